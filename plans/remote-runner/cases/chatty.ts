// `chatty`: writes output lines without a pause until it is stopped, so the
// connection can drop while it writes.
import { setImmediate as tick } from 'node:timers/promises';
import type { CaseContext } from '../context.ts';

// Write until stopped.
export async function chatty({ runenv }: CaseContext): Promise<void> {
  await runenv.recordMessage('chatty: writing until stopped');
  for (let line = 0; ; line++) {
    if (!process.stdout.write(`chatty line ${line} ${'x'.repeat(200)}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    if (line % 1000 === 0) await tick();
  }
}
