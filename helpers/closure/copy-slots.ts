// At most N closure copies at once across every runner of a run: a ticket queue
// on the sync service. Ticket k waits until k - N earlier copies have finished.
import { runKeys, type RunScope, type SyncClient } from '../sync-service/client.ts';

export const MAX_COPIES_PARAM = 'remote-runners-max-concurrent-copy';
export const DEFAULT_MAX_COPIES = 4;

// Run `work` holding one of `max` copy slots of the run.
export async function withCopySlot<T>(client: SyncClient, scope: RunScope, max: number, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const keys = runKeys(scope);
  const ticket = await client.signalEntry(keys.state('copy-slots:ticket'), signal);
  if (ticket > max) await client.barrier(keys.state('copy-slots:done'), ticket - max, signal);
  try {
    return await work();
  } finally {
    await client.signalEntry(keys.state('copy-slots:done')).catch(() => {});
  }
}
