// Do a piece of work once per run for a key (e.g. one copy per host), however
// many instances ask: the first to enrol does it and publishes the result, the
// others wait for that result and fail fast with the worker's error.
import { TgError } from '../shared/error.ts';
import { runKeys, type RunScope, type SyncClient } from '../sync-service/client.ts';

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

// Run `work` in exactly one instance of the run per `key`; everyone gets its value.
export async function oncePerRun<T>(client: SyncClient, scope: RunScope, key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<{ leader: boolean; value: T }> {
  const keys = runKeys(scope);
  const topic = keys.topic(`once:${key}`);
  const seq = await client.signalEntry(keys.state(`once:${key}`), signal);
  if (seq === 1) {
    try {
      const value = await work();
      await client.publish(topic, { ok: true, value } satisfies Outcome<T>, signal);
      return { leader: true, value };
    } catch (error) {
      await client.publish(topic, { ok: false, error: (error as Error).message } satisfies Outcome<T>).catch(() => {});
      throw error;
    }
  }
  for await (const message of client.subscribe(topic, signal)) {
    const outcome = message as Outcome<T>;
    if (outcome.ok) return { leader: false, value: outcome.value };
    throw new TgError('E_COPY', `${key}: the instance doing it for this run failed: ${outcome.error}`);
  }
  throw new TgError('E_SYNC', `${key}: the sync service ended the subscription before a result arrived`);
}
