// `escape`: starts a helper in a session of its own that keeps the instance's
// stdout open and outlives it (as a careless daemon would), then succeeds at once.
// The run must not wait for the helper, and nothing may be left running.
import { spawn } from 'node:child_process';
import type { CaseContext } from '../context.ts';

// Leave a helper behind, holding our output.
export async function escape({ runenv }: CaseContext): Promise<void> {
  const helper = spawn('setsid', ['sleep', '600'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
  helper.unref();
  await runenv.recordMessage(`escape: left a helper behind (pid ${helper.pid})`);
}
