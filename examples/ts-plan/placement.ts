// `placement`: each instance records its host, learns every other instance's host,
// and writes host.json and peers.json to its outputs.
import { hostname } from 'node:os';
import type { RunEnv, SyncClient } from '@testground/sdk';
import { writeJson } from './outputs.ts';
import { intParam } from './params.ts';

/** What each instance tells the others. */
interface Peer {
  seq: number;
  hostname: string;
}

// Take a sequence number, publish this host, collect every instance's, then wait for all.
export async function placement(runenv: RunEnv, client: SyncClient): Promise<void> {
  const signal = AbortSignal.timeout(intParam(runenv, 'timeout_secs', 60) * 1000);
  const n = runenv.testInstanceCount;
  const host = hostname();

  const seq = await within(signal, 'taking a sequence number', client.signalEntry('placement'));
  await writeJson(runenv, 'host.json', { seq, hostname: host, group: runenv.testGroupId, instance_count: n });

  await within(signal, 'publishing this instance', client.publish('peers', { seq, hostname: host } satisfies Peer));
  const peers = await collectPeers(client, n, signal);

  // Stay until every instance has its list, so none leaves the run early.
  await within(signal, `waiting for all ${n} instances to finish`, client.signalAndWait('done', n));
  await writeJson(runenv, 'peers.json', peers);
  await runenv.recordMessage(`instance ${seq} of ${n} on ${host}`);
}

// Read the `peers` topic until it holds `n` instances; sorted by seq.
async function collectPeers(client: SyncClient, n: number, signal: AbortSignal): Promise<Peer[]> {
  const sub = await within(signal, 'subscribing to peers', client.subscribe('peers'));
  // Cancelling ends the subscription's iterator, which ends the loop below.
  const cancel = () => sub.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  const peers: Peer[] = [];
  try {
    for await (const message of sub.wait) {
      peers.push(toPeer(message));
      if (peers.length === n) break;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    sub.cancel();
  }
  if (peers.length < n) {
    throw new Error(`heard from ${peers.length} of ${n} instances${signal.aborted ? `: ${reason(signal)}` : ''}`);
  }
  return peers.sort((a, b) => a.seq - b.seq);
}

// Check a message from the `peers` topic.
function toPeer(message: unknown): Peer {
  const m = message as Partial<Peer> | null;
  if (typeof m?.seq !== 'number' || typeof m.hostname !== 'string') {
    throw new Error(`peers: expected {seq, hostname}, got ${JSON.stringify(message)}`);
  }
  return { seq: m.seq, hostname: m.hostname };
}

// Wait for `promise`, or reject once `signal` aborts; the SDK's calls take no signal.
async function within<T>(signal: AbortSignal, what: string, promise: Promise<T>): Promise<T> {
  if (signal.aborted) throw new Error(`${what}: ${reason(signal)}`);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error(`${what}: ${reason(signal)}`));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

// Why `signal` aborted, e.g. "The operation was aborted due to timeout".
function reason(signal: AbortSignal): string {
  return (signal.reason as Error | undefined)?.message ?? 'aborted';
}
