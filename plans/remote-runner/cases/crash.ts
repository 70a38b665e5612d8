// `crash`: the process dies without a result event, by a signal or by exit(3).
import { constants } from 'node:os';
import { stringParam } from '../../../helpers/runenv/index.ts';
import { TgError } from '../../../helpers/shared/error.ts';
import type { CaseContext } from '../context.ts';
import { sleep } from '../within.ts';

const PARAM = 'crash_signal';

// Kill this process with the signal of `crash_signal` (default SIGKILL), or exit 3 for `exit`.
export async function crash({ env, runenv }: CaseContext): Promise<void> {
  const how = stringParam(env, PARAM, 'SIGKILL');
  if (how !== 'exit' && !(how in constants.signals)) {
    throw new TgError('E_PARAM', `param ${PARAM}: expected "exit" or a signal name such as SIGKILL, got ${JSON.stringify(how)}`);
  }
  await runenv.recordMessage(`crash: dying by ${how}`);
  if (how === 'exit') process.exit(3);
  process.kill(process.pid, how as NodeJS.Signals);
  // A signal Node ignores or handles (SIGUSR1, SIGCHLD, ...) leaves us alive: say so.
  await sleep(2_000);
  throw new TgError('E_PARAM', `param ${PARAM}: the signal ${how} did not end the process`);
}
