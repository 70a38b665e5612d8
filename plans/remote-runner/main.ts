// The plan's entry: validate the run environment, then let the SDK run the case.
import { parseRunEnv } from '../../helpers/runenv/index.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { SyncClient } from '../../helpers/sync-service/index.ts';
import { cases } from './cases/index.ts';
import type { Case, CaseContext } from './context.ts';

// The SDK's run-environment parser throws on a missing TEST_SUBNET (it parses "" as a CIDR);
// Testground's local:exec sets this one, so it is what the SDK gets when none was given.
const SDK_SUBNET_FALLBACK = '127.1.0.1/16';

// Run the test case TEST_CASE names; resolves with the exit code (1 when the case failed).
export async function main(): Promise<number> {
  const received: Record<string, string | undefined> = { ...process.env };
  const env = parseRunEnv(received);
  if (!Object.hasOwn(cases, env.testCase)) {
    throw new TgError('E_RUNENV', `run environment: TEST_CASE: unknown test case ${JSON.stringify(env.testCase)} (expected one of ${Object.keys(cases).join(', ')})`);
  }
  // The SDK's logger writes a file named `stdout` into the working directory.
  if (env.tempPath !== '') {
    try {
      process.chdir(env.tempPath);
    } catch (error) {
      throw new TgError('E_RUNENV', `run environment: TEST_TEMP_PATH: cannot enter ${JSON.stringify(env.tempPath)}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (env.subnet === undefined) process.env.TEST_SUBNET = SDK_SUBNET_FALLBACK;
  // The SDK dies of an unhandled 'error' event when the sync service is unreachable: check first.
  (await SyncClient.connect(env.syncService.url, { signal: AbortSignal.timeout(15_000) })).close();

  const { default: sdk } = await import('@testground/sdk');
  let failed = false;
  // Two parameters, so the SDK connects a sync client and passes it in.
  const wrap = (run: Case) => async (runenv: CaseContext['runenv'], client: CaseContext['client']) => {
    try {
      await run({ env, received, runenv, client });
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const map = Object.fromEntries(Object.entries(cases).map(([name, run]) => [name, wrap(run)]));
  await sdk.invokeMap(map as unknown as Parameters<typeof sdk.invokeMap>[0]);
  return failed ? 1 : 0;
}
