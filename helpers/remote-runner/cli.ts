// remote-runner [--artifacts <file>]: the bin local:exec starts for every instance.
import { parseArgs } from 'node:util';
import { TgError } from '../shared/error.ts';
import { requireUtf8Environment } from '../shared/utf8.ts';
import { parseRunEnv } from '../runenv/runenv.ts';
import { runInstance } from './run-instance.ts';

const usage = 'usage: remote-runner --job <job.json>   (reads the instance environment: TEST_*, SYNC_SERVICE_*)';

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let jobFile: string | undefined;
  try {
    const { values } = parseArgs({ args: argv, options: { job: { type: 'string' }, help: { type: 'boolean' } } });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    jobFile = values.job;
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
  if (!jobFile) throw new TgError('E_USAGE', `--job is required\n${usage}`);
  requireUtf8Environment();
  return runInstance(parseRunEnv(), { jobFile, env: process.env });
}
