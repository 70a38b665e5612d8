// `stall`: never ends, so runners' timeouts and cancellation can be tested.
import type { CaseContext } from '../context.ts';

// Record "stalling", then wait forever with a timer keeping the process alive.
export async function stall({ runenv }: CaseContext): Promise<void> {
  await runenv.recordMessage('stalling');
  setInterval(() => {}, 60_000);
  await new Promise<never>(() => {});
}
