// A real @testground/sdk sync client pointed at a given sync service.
import sdk from '@testground/sdk';

export interface SdkClient {
  signalEntry(state: string): Promise<number>;
  barrier(state: string, target: number): Promise<{ wait: Promise<void>; cancel(): void }>;
  publish(topic: string, payload: unknown): Promise<number>;
  subscribe(topic: string): Promise<{ wait: AsyncGenerator<unknown>; cancel(): void }>;
  signalAndWait(state: string, target: number): Promise<number>;
  close(): void;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

// The SDK reads the sync service's address from the process environment.
export async function sdkClient(url: string, run = 'conformance'): Promise<SdkClient> {
  const { hostname, port } = new URL(url);
  process.env.SYNC_SERVICE_HOST = hostname;
  process.env.SYNC_SERVICE_PORT = port;
  const runenv = { logger: quiet, runParams: { testRun: run, testPlan: 'remote-runner', testCase: 'conformance' } };
  return (await sdk.sync.newBoundClient(runenv as never)) as unknown as SdkClient;
}
