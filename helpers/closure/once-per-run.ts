// Do a piece of work once per run for a key (e.g. one copy per host), however
// many instances ask: the first to enrol does it, beats a heartbeat while it
// works and publishes the result; the others wait for that result, fail fast
// with the worker's error, and fail within LEASE_MS if the worker falls silent.
import { TgError } from '../shared/error.ts';
import { runKeys, type RunScope, type SyncClient } from '../sync-service/client.ts';
import { BEAT_MS, LEASE_MS, follow, heartbeat } from './lease.ts';

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };
type Message<T> = Outcome<T> | { beat: number };

// Run `work` in exactly one instance of the run per `key`; everyone gets its value.
export async function oncePerRun<T>(
  client: SyncClient,
  scope: RunScope,
  key: string,
  work: () => Promise<T>,
  options: { signal?: AbortSignal; leaseMs?: number } = {},
): Promise<{ leader: boolean; value: T }> {
  const { signal, leaseMs = LEASE_MS } = options;
  const keys = runKeys(scope);
  const topic = keys.topic(`once:${key}`);
  const seq = await client.signalEntry(keys.state(`once:${key}`), signal);
  if (seq === 1) {
    const stop = heartbeat(client, topic, { beat: process.pid } satisfies Message<T>, Math.min(BEAT_MS, leaseMs / 4));
    try {
      const value = await work();
      stop();
      await client.publish(topic, { ok: true, value } satisfies Message<T>, signal);
      return { leader: true, value };
    } catch (error) {
      stop();
      // Short enough for any sync service (Testground's reads at most 32 KiB a message).
      await client.publish(topic, { ok: false, error: (error as Error).message.slice(0, 4_000) } satisfies Message<T>).catch(() => {});
      throw error;
    }
  }
  let heard = Date.now();
  const outcome = await follow(client, topic, (message, now) => {
    if (message !== undefined) {
      heard = now;
      const m = message as Message<T>;
      if ('ok' in m) return m;
    }
    if (now - heard > leaseMs) {
      throw new TgError('E_COPY', `${key}: the instance doing it for this run has not been heard of for ${leaseMs / 1000} s (it stopped or lost the sync service)`);
    }
    return undefined;
  }, signal);
  if (!outcome.ok) throw new TgError('E_COPY', `${key}: the instance doing it for this run failed: ${outcome.error}`);
  return { leader: false, value: outcome.value };
}
