// At most N closure copies at once across every runner of a run. Each copy takes a
// ticket and beats a heartbeat until it is done; ticket k goes ahead once fewer
// than N earlier tickets are still alive. One that falls silent for LEASE_MS
// (its instance died) no longer counts, so it cannot hold the others forever.
import { runKeys, type RunScope, type SyncClient } from '../sync-service/client.ts';
import { BEAT_MS, LEASE_MS, follow, heartbeat } from './lease.ts';

export const MAX_COPIES_PARAM = 'remote-runners-max-concurrent-copy';
export const DEFAULT_MAX_COPIES = 4;

interface SlotMessage {
  ticket: number;
  done?: true;
}

// Run `work` holding one of `max` copy slots of the run.
export async function withCopySlot<T>(
  client: SyncClient,
  scope: RunScope,
  max: number,
  work: () => Promise<T>,
  options: { signal?: AbortSignal; leaseMs?: number } = {},
): Promise<T> {
  const { signal, leaseMs = LEASE_MS } = options;
  const keys = runKeys(scope);
  const topic = keys.topic('copy-slots');
  const ticket = await client.signalEntry(keys.state('copy-slots:ticket'), signal);
  const stop = heartbeat(client, topic, { ticket } satisfies SlotMessage, Math.min(BEAT_MS, leaseMs / 4));
  try {
    if (ticket > max) await slotFree(client, topic, ticket, max, leaseMs, signal);
    return await work();
  } finally {
    stop();
    await client.publish(topic, { ticket, done: true } satisfies SlotMessage).catch(() => {});
  }
}

// Resolve once fewer than `max` tickets before `ticket` are alive and not done.
function slotFree(client: SyncClient, topic: string, ticket: number, max: number, leaseMs: number, signal?: AbortSignal): Promise<true> {
  const since = Date.now();
  const heard = new Map<number, number>();
  const done = new Set<number>();
  return follow(client, topic, (message, now) => {
    if (message !== undefined) {
      const m = message as SlotMessage;
      if (m.done) done.add(m.ticket);
      else heard.set(m.ticket, now);
    }
    let alive = 0;
    for (let t = 1; t < ticket; t++) {
      if (!done.has(t) && now - (heard.get(t) ?? since) <= leaseMs) alive += 1;
    }
    return alive < max ? true : undefined;
  }, signal);
}
