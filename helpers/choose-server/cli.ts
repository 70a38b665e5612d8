// choose-server [--json]: enrol this instance and print `name,arch` (or JSON).
import { parseArgs } from 'node:util';
import { TgError } from '../shared/error.ts';
import { parseRunEnv } from '../runenv/runenv.ts';
import { chooseServer } from './choose.ts';

const usage = 'usage: choose-server [--json]   (reads the instance environment: TEST_*, SYNC_SERVICE_*)';

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let json = false;
  try {
    const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean' } } });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    json = values.json ?? false;
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
  const choice = await chooseServer(parseRunEnv(), { signal: AbortSignal.timeout(60_000) });
  process.stdout.write(json ? `${JSON.stringify(choice)}\n` : `${choice.name},${choice.arch}\n`);
  return 0;
}
