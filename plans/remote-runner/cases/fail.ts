// `fail`: fails on purpose; the SDK records a failure event.
import type { CaseContext } from '../context.ts';

// Throw, always.
export async function fail(_ctx: CaseContext): Promise<void> {
  throw new Error('fail: this test case fails on purpose');
}
