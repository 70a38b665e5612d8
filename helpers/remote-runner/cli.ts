// remote-runner: the bin local:exec starts for every instance (`--job`, as a Nix
// artifact runs it), or the bin a self-placing Go plan hands itself to (`--app`).
import { parseArgs } from 'node:util';
import { TgError } from '../shared/error.ts';
import { requireUtf8Environment } from '../shared/utf8.ts';
import { parseRunEnv } from '../runenv/runenv.ts';
import { runInstance } from './run-instance.ts';
import { jobForProgram } from './self-placed.ts';

const usage = `usage: remote-runner --job <job.json>    run the instance as the job description says
       remote-runner --app <program>     run this program where remote-runners says (a plan that places itself)
  (both read the instance environment: TEST_*, SYNC_SERVICE_*)`;

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let values: { job?: string | undefined; app?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: argv, options: { job: { type: 'string' }, app: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (Boolean(values.job) === Boolean(values.app)) throw new TgError('E_USAGE', `one of --job and --app is required\n${usage}`);
  requireUtf8Environment();
  const runenv = parseRunEnv();
  const job = values.job ? { file: values.job } : await jobForProgram(values.app!);
  return runInstance(runenv, { job, env: process.env });
}
