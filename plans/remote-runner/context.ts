// What every test case of the plan receives: our run environment and the SDK's.
import type { RunEnv as SdkRunEnv, SyncClient } from '@testground/sdk';
import type { RunEnv } from '../../helpers/runenv/index.ts';

/** The inputs of one test case. */
export interface CaseContext {
  /** Our parsed run environment; its params keep values holding `=`. */
  env: RunEnv;
  /** The process environment exactly as the instance received it. */
  received: Readonly<Record<string, string | undefined>>;
  /** The SDK's run environment: recordMessage and the logger. */
  runenv: SdkRunEnv;
  /** The SDK's sync client, bound to this run. */
  client: SyncClient;
}

/** A test case: resolves on success, throws on failure. */
export type Case = (ctx: CaseContext) => Promise<void>;
