// The plan's entry: run the test case that TEST_CASE names.
import sdk from '@testground/sdk';
import type { RunEnv, SyncClient } from '@testground/sdk';
import { fail } from './fail.ts';
import { placement } from './placement.ts';

/** A test case: resolves on success, throws on failure. */
type TestCase = (runenv: RunEnv, client: SyncClient) => Promise<void>;

const cases: Record<string, TestCase> = { placement, fail };

// The SDK's logger writes a file named `stdout` into the working directory.
const tempPath = process.env.TEST_TEMP_PATH;
if (tempPath) process.chdir(tempPath);

// The SDK parses TEST_SUBNET as a CIDR and throws when it is missing; Testground
// always sets it, this default helps when the plan is started by hand.
process.env.TEST_SUBNET ||= '127.1.0.1/16';

// The SDK connects a sync client only for functions declared with two
// parameters, while its types declare one; hence the cast.
await sdk.invokeMap(cases as unknown as Parameters<typeof sdk.invokeMap>[0]);
