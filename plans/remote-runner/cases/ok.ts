// `ok`: records a message and succeeds.
import type { CaseContext } from '../context.ts';

// Succeed after one message.
export async function ok({ runenv }: CaseContext): Promise<void> {
  await runenv.recordMessage('ok: this test case succeeds');
}
