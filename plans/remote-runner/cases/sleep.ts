// `sleep`: writes `started.txt` to its outputs, sleeps `sleep_secs`, and succeeds.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { intParam } from '../../../helpers/runenv/index.ts';
import type { CaseContext } from '../context.ts';

// Sleep a while, leaving a mark in the outputs first.
export async function sleep({ env, runenv }: CaseContext): Promise<void> {
  const secs = intParam(env, 'sleep_secs', 5);
  await writeFile(join(env.outputsPath, 'started.txt'), `started at ${new Date().toISOString()}\n`);
  await runenv.recordMessage(`sleeping for ${secs} s`);
  await sleepFor(secs * 1000);
}
