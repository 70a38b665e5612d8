// `one-crashes`: the instance that signs up second kills itself (SIGKILL) after a
// second; every other one sleeps `sleep_secs` and succeeds, writing done.txt.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { intParam } from '../../../helpers/runenv/index.ts';
import type { CaseContext } from '../context.ts';
import { sleep } from '../within.ts';

// Crash if we are the second to sign up, else finish normally.
export async function oneCrashes({ env, runenv, client }: CaseContext): Promise<void> {
  const seq = await client.signalEntry('one-crashes');
  if (seq === 2) {
    await runenv.recordMessage('one-crashes: this one dies in a second');
    await sleep(1_000);
    process.kill(process.pid, 'SIGKILL');
  }
  await sleep(intParam(env, 'sleep_secs', 4) * 1000);
  await writeFile(join(env.outputsPath, 'done.txt'), `instance ${seq} finished\n`);
  await runenv.recordMessage(`one-crashes: instance ${seq} finished`);
}
