// Leases over the sync service: whoever works for others says so every few
// seconds, and whoever waits for them stops waiting when they fall silent. A
// dead instance can then hold up the run for LEASE_MS at most.
import type { SyncClient } from '../sync-service/client.ts';

/** How often a worker says it is alive. */
export const BEAT_MS = 5_000;
/** How long a worker may stay silent before it counts as gone. */
export const LEASE_MS = 20_000;
const TICK_MS = 1_000;

// Publish `payload` on `topic` now and every `everyMs` until the returned stop() is called.
export function heartbeat(client: SyncClient, topic: string, payload: unknown, everyMs = BEAT_MS): () => void {
  const beat = () => void client.publish(topic, payload).catch(() => {});
  beat();
  const timer = setInterval(beat, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

// Follow `topic` until `decide` gives an answer; it sees every message (earlier
// ones first) and is also asked every second with no message, so it can notice
// silence. A throw from `decide` rejects; so does a lost sync service.
export async function follow<T>(client: SyncClient, topic: string, decide: (message: unknown, now: number) => T | undefined, signal?: AbortSignal): Promise<T> {
  const stop = new AbortController();
  const stopped = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      const ask = (message: unknown) => {
        try {
          const answer = decide(message, Date.now());
          if (answer !== undefined) resolve(answer);
        } catch (error) {
          reject(error as Error);
        }
      };
      timer = setInterval(() => ask(undefined), TICK_MS);
      void (async () => {
        try {
          for await (const message of client.subscribe(topic, stopped)) ask(message);
        } catch (error) {
          if (!stop.signal.aborted) reject(error as Error);
        }
      })();
    });
  } finally {
    clearInterval(timer);
    stop.abort();
  }
}
