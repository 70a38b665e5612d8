// `fail`: throws, so the SDK records a failure event for the instance.
import type { RunEnv, SyncClient } from '@testground/sdk';

// Fail, always. It takes the client so the SDK connects one and the failure event reaches the sync service.
export async function fail(runenv: RunEnv, _client: SyncClient): Promise<void> {
  await runenv.recordMessage('failing on purpose');
  throw new Error('fail: this test case fails on purpose');
}
