// One suite, run against our sync service and against Testground's own Go one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoSyncPeer } from '../helpers/go-sync-peer.ts';
import { RawClient, type Frame } from '../helpers/raw-client.ts';
import { sdkClient } from '../helpers/sdk-client.ts';
import { startSyncBin } from './sync-bin.ts';

interface Server {
  url: string;
  close(): Promise<void>;
}

// Where v0.1.0 of the Go service is looser than ours, the suite says so here.
// racyCancel: pubsub.go's writer selects between a ready subscriber channel and the
// cancelled context, so a cancelled subscription can still receive later messages.
// refusal: a message over 32768 bytes or nested over 10,000 levels. The Go service's
// read fails, so it closes the connection (1009, 1007); ours answers that request with
// an error and keeps the connection. Neither stores anything.
// sizesSubscriberFrames: Go stores any publish that fits 32768 bytes, even when its
// re-encoding (<, > and & become \u003c…, and the whole is quoted again) hands
// subscribers a frame over 32768 that sdk-go cannot read; ours refuses that publish.
const servers: Array<{ name: string; start: () => Promise<Server>; racyCancel: boolean; refusal: 'closes' | 'answers'; sizesSubscriberFrames: boolean }> = [
  { name: 'ours', start: () => startSyncBin(), racyCancel: false, refusal: 'answers', sizesSubscriberFrames: true },
  { name: "Testground's Go", start: startGoSyncPeer, racyCancel: true, refusal: 'closes', sizesSubscriberFrames: false },
];

const limit = 32_768;
const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
// A publish frame with `payload` as raw JSON text, so no encoder recurses over it here.
const publishFrame = (id: string, topic: string, payload: string) => `{"id":${JSON.stringify(id)},"publish":{"topic":${JSON.stringify(topic)},"payload":${payload}}}`;
// The longest string payload whose frame to a subscriber, with a 20-digit id, fits 32768 bytes.
const longestFitting = limit - JSON.stringify({ id: '0'.repeat(20), error: '', publish: null, subscribe: '""', signal_entry: null }).length;

let unique = 0;
const fresh = (what: string) => `${what}-${process.pid}-${++unique}`;

describe.each(servers)('the $name sync service', ({ start, racyCancel, refusal, sizesSubscriberFrames }) => {
  let server: Server;
  const clients: Array<{ close(): void }> = [];
  const connect = async () => {
    const c = await RawClient.connect(server.url);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  it('hands out 1-based signal_entry counts per state through the SDK client', async () => {
    const client = await sdkClient(server.url, fresh('run'));
    clients.push(client);
    expect(await client.signalEntry('a')).toBe(1);
    expect(await client.signalEntry('a')).toBe(2);
    expect(await client.signalEntry('b')).toBe(1);
    expect(await client.signalEntry('a')).toBe(3);
  });

  it('answers every response with the five fields of the Go wire format', async () => {
    const c = await connect();
    const res = await c.request({ id: 'x1', signal_entry: { state: fresh('s') } });
    expect(res).toEqual({ id: 'x1', error: '', publish: null, subscribe: '', signal_entry: { seq: 1 } });
    const pub = await c.request({ id: 'x2', publish: { topic: fresh('t'), payload: 1 } });
    expect(pub).toEqual({ id: 'x2', error: '', publish: { seq: 1 }, subscribe: '', signal_entry: null });
  });

  it('gives each of 1,000 concurrent clients a distinct seq from 1 to 1,000', { timeout: 60_000 }, async () => {
    const state = fresh('crowd');
    const crowd = await Promise.all(Array.from({ length: 1000 }, () => connect()));
    const seqs = await Promise.all(crowd.map((c) => c.request({ id: 'e', signal_entry: { state } }, 20_000)));
    const sorted = seqs.map((f) => f.signal_entry?.seq).sort((a, b) => a! - b!);
    expect(sorted).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    for (const c of crowd) c.close();
  });

  it('releases a barrier once late joiners bring the count to its target', async () => {
    const waiter = await sdkClient(server.url, 'barrier-run');
    clients.push(waiter);
    const state = fresh('ready');
    const barrier = await waiter.barrier(state, 3);
    let released = false;
    void barrier.wait.then(() => (released = true));
    for (let i = 0; i < 2; i++) await (await sdkClient(server.url, 'barrier-run')).signalEntry(state);
    await new Promise((r) => setTimeout(r, 300));
    expect(released).toBe(false);
    const late = await sdkClient(server.url, 'barrier-run');
    clients.push(late);
    expect(await late.signalEntry(state)).toBe(3);
    await expect(barrier.wait).resolves.toBeUndefined();
    expect(released).toBe(true);
  });

  it('answers a barrier at once when its count is already reached, and a target of 0 at once', async () => {
    const c = await connect();
    const state = fresh('done');
    await c.request({ id: 's1', signal_entry: { state } });
    await c.request({ id: 's2', signal_entry: { state } });
    expect(await c.request({ id: 'b2', barrier: { state, target: 2 } })).toMatchObject({ id: 'b2', error: '' });
    expect(await c.request({ id: 'b0', barrier: { state: fresh('never'), target: 0 } })).toMatchObject({ id: 'b0', error: '' });
  });

  it('numbers publishes from 1 per topic', async () => {
    const client = await sdkClient(server.url, fresh('run'));
    clients.push(client);
    expect(await client.publish('t1', { n: 1 })).toBe(1);
    expect(await client.publish('t1', { n: 2 })).toBe(2);
    expect(await client.publish('t2', { n: 1 })).toBe(1);
  });

  it('replays earlier messages in order to a late subscriber, then streams new ones', async () => {
    const run = fresh('run');
    const publisher = await sdkClient(server.url, run);
    clients.push(publisher);
    for (let i = 1; i <= 50; i++) await publisher.publish('events', { i });
    const subscriber = await sdkClient(server.url, run);
    clients.push(subscriber);
    const sub = await subscriber.subscribe('events');
    const seen: unknown[] = [];
    const reading = (async () => {
      for await (const msg of sub.wait) {
        seen.push(msg);
        if (seen.length === 60) return;
      }
    })();
    for (let i = 51; i <= 60; i++) await publisher.publish('events', { i });
    await Promise.race([reading, new Promise((_, r) => setTimeout(() => r(new Error(`saw ${seen.length}`)), 10_000))]);
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => ({ i: i + 1 })));
    sub.cancel();
  });

  it('keeps the order of messages from concurrent publishers as their seqs say', async () => {
    const topic = fresh('race');
    const pubs = await Promise.all(Array.from({ length: 5 }, () => connect()));
    const acks = await Promise.all(
      pubs.flatMap((p, n) => Array.from({ length: 20 }, (_, i) => p.request({ id: `p${i}`, publish: { topic, payload: `${n}:${i}` } }))),
    );
    const sub = await connect();
    sub.send({ id: 'sub', subscribe: { topic } });
    await sub.until(() => sub.framesFor('sub').length === 100);
    const bySeq = new Map(acks.map((a, k) => [a.publish!.seq, k]));
    const order = sub.framesFor('sub').map((f) => JSON.parse(f.subscribe) as string);
    const expected = [...bySeq.keys()].sort((a, b) => a - b).map((seq) => {
      const k = bySeq.get(seq)!;
      return `${Math.floor(k / 20)}:${k % 20}`;
    });
    expect(order).toEqual(expected);
  });

  it('hands subscribers the payload re-encoded as Go does: sorted keys, HTML escaped', async () => {
    const c = await connect();
    const topic = fresh('enc');
    await c.request({ id: 'p', publish: { topic, payload: { b: 1.5, a: '<&>', c: [null, true, 'é'], ä: {}, A: 'x' } } });
    const first = await c.request({ id: 's', subscribe: { topic } });
    expect(first.subscribe).toBe('{"A":"x","a":"\\u003c\\u0026\\u003e","b":1.5,"c":[null,true,"é"],"ä":{}}');
  });

  it('stops a subscription when it is cancelled', async () => {
    const c = await connect();
    const topic = fresh('cancel');
    await c.request({ id: 'p1', publish: { topic, payload: 1 } });
    await c.request({ id: 's', subscribe: { topic } });
    c.send({ id: 's', is_cancel: true });
    await new Promise((r) => setTimeout(r, 300));
    await c.request({ id: 'p2', publish: { topic, payload: 2 } });
    await new Promise((r) => setTimeout(r, 500));
    const delivered = c.framesFor('s').map((f) => f.subscribe);
    if (racyCancel) expect(delivered[0]).toBe('1');
    else expect(delivered).toEqual(['1']);
    expect((await c.request({ id: 'after', signal_entry: { state: fresh('alive') } })).signal_entry?.seq).toBe(1);
    const other = await connect();
    await other.request({ id: 's', subscribe: { topic } });
    await other.until(() => other.framesFor('s').length === 2);
  });

  it.each([
    ['a frame that is not JSON', 'this is { not json'],
    ['a request without an id', JSON.stringify({ signal_entry: { state: 'x' } })],
    ['a request with no known operation', JSON.stringify({ id: 'nop', frobnicate: {} })],
    ['a barrier with a negative target', JSON.stringify({ id: 'neg', barrier: { state: 'x', target: -1 } })],
  ])('survives %s while every other client keeps working', async (_name, bad) => {
    const topic = fresh('survive');
    const bystander = await connect();
    bystander.send({ id: 'watch', subscribe: { topic } });
    const offender = await connect();
    offender.send(bad);
    await new Promise((r) => setTimeout(r, 200));
    const publisher = await connect();
    expect((await publisher.request({ id: 'p', publish: { topic, payload: 'still here' } })).publish?.seq).toBe(1);
    await bystander.until(() => bystander.framesFor('watch').length === 1);
    expect(await publisher.request({ id: 'e', signal_entry: { state: fresh('after') } })).toMatchObject({ signal_entry: { seq: 1 } });
  });

  // Either way the message is refused at once: closed (Go) or answered with an error naming the limit (ours).
  async function expectRefused(c: RawClient, id: string, closeCode: number, message: RegExp): Promise<void> {
    if (refusal === 'closes') {
      await c.until(() => c.closed !== undefined);
      expect(c.closed?.code).toBe(closeCode);
    } else {
      await c.until(() => c.framesFor(id).length > 0);
      expect(c.framesFor(id)[0]).toMatchObject({ id, error: expect.stringMatching(message), publish: null });
      expect(c.closed).toBeUndefined();
    }
  }

  it('takes a payload nested 10,000 levels deep and refuses one nested 10,001, storing nothing of it', async () => {
    const topic = fresh('deep');
    const watcher = await connect();
    watcher.send({ id: 'w', subscribe: { topic } });
    const c = await connect();
    // The request object and `publish` are two levels, so these payloads make 10,000 and 10,001 in all.
    c.send(publishFrame('ok', topic, nested(9_998)));
    await c.until(() => c.framesFor('ok').length === 1);
    expect(c.framesFor('ok')[0]).toMatchObject({ error: '', publish: { seq: 1 } });
    c.send(publishFrame('deep', topic, nested(9_999)));
    await expectRefused(c, 'deep', 1007, /deeper than 10000 levels/);
    const after = await connect();
    expect((await after.request({ id: 'p', publish: { topic, payload: 'after' } })).publish?.seq).toBe(2);
    await watcher.until(() => watcher.framesFor('w').length === 2);
    expect(watcher.framesFor('w').map((f: Frame) => f.subscribe)).toEqual([nested(9_998), '"after"']);
  });

  it('refuses a 33 KiB publish and never delivers it, while one of 32 KiB less the envelope passes', async () => {
    const topic = fresh('big');
    const watcher = await connect();
    watcher.send({ id: 'w', subscribe: { topic } });
    const big = await connect();
    const frame = publishFrame('big', topic, JSON.stringify('x'.repeat(33 * 1024)));
    big.send(frame);
    await expectRefused(big, 'big', 1009, new RegExp(`${Buffer.byteLength(frame)} bytes, over the limit of ${limit} bytes`));
    const fits = await connect();
    const fitting = publishFrame('fits', topic, JSON.stringify('y'.repeat(longestFitting)));
    expect(Buffer.byteLength(fitting)).toBeLessThan(limit);
    fits.send(fitting);
    await fits.until(() => fits.framesFor('fits').length === 1);
    expect(fits.framesFor('fits')[0]).toMatchObject({ error: '', publish: { seq: 1 } });
    const late = await connect();
    late.send({ id: 'late', subscribe: { topic } });
    await late.until(() => late.framesFor('late').length === 1);
    await watcher.until(() => watcher.framesFor('w').length === 1);
    await new Promise((r) => setTimeout(r, 200));
    for (const c of [watcher, late]) {
      expect(c.frames.map((f) => JSON.parse(f.subscribe) as string)).toEqual(['y'.repeat(longestFitting)]);
      expect(c.largest).toBeLessThanOrEqual(limit);
    }
  });

  it(sizesSubscriberFrames
    ? 'refuses a publish that fits 32768 bytes but would reach subscribers larger, once re-encoded'
    : 'stores a publish that fits 32768 bytes and hands subscribers a larger frame, once re-encoded', async () => {
    const topic = fresh('escaped');
    const c = await connect();
    // 6,000 '<' are 6,000 bytes in the request and 42,000 once escaped as \u003c and quoted inside the subscribe string.
    const res = await c.request({ id: 'p', publish: { topic, payload: '<'.repeat(6_000) } });
    const sub = await connect();
    sub.send({ id: 's', subscribe: { topic } });
    await new Promise((r) => setTimeout(r, 300));
    if (sizesSubscriberFrames) {
      expect(res).toMatchObject({ publish: null, error: expect.stringMatching(/42\d{3}-byte message, over the limit of 32768 bytes/) });
      expect(sub.frames).toEqual([]);
    } else {
      expect(res).toMatchObject({ error: '', publish: { seq: 1 } });
      await sub.until(() => sub.frames.length === 1);
      expect(sub.largest).toBeGreaterThan(40_000);
    }
  });
});
