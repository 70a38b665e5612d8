// The sync-service bin under hostile or careless clients: each limit holds, the
// offender alone is refused or closed, and everyone else keeps being served.
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/raw-client.ts';
import { startSyncBin, type SyncBin } from './sync-bin.ts';

const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const publishFrame = (id: string, topic: string, payload: string) => `{"id":"${id}","publish":{"topic":"${topic}","payload":${payload}}}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the sync-service bin', () => {
  let service: SyncBin | undefined;
  const clients: RawClient[] = [];
  const start = async (args: string[] = []) => (service = await startSyncBin(args));
  const connect = async (url: string) => {
    const c = await RawClient.connect(url);
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await service?.close();
    service = undefined;
  });

  it('answers a payload nested past 10,000 levels with an error and keeps serving everyone', { timeout: 30_000 }, async () => {
    const svc = await start();
    const bystander = await connect(svc.url);
    bystander.send({ id: 'w', subscribe: { topic: 't' } });
    const offender = await connect(svc.url);
    // 5,000 levels overflowed the stack of the old recursive encoder and took the process down.
    offender.send(publishFrame('5k', 't', nested(5_000)));
    offender.send(publishFrame('10k', 't', nested(10_000)));
    await offender.until(() => offender.frames.length === 2);
    expect(offender.framesFor('5k')[0]).toMatchObject({ error: '', publish: { seq: 1 } });
    expect(offender.framesFor('10k')[0]).toMatchObject({ publish: null, error: expect.stringMatching(/deeper than 10000 levels/) });
    await svc.logged(/rejected request "10k" .*deeper than 10000 levels/);
    const other = await connect(svc.url);
    expect((await other.request({ id: 'p', publish: { topic: 't', payload: 'next' } })).publish?.seq).toBe(2);
    expect((await offender.request({ id: 'e', signal_entry: { state: 's' } })).signal_entry?.seq).toBe(1);
    await bystander.until(() => bystander.framesFor('w').length === 2);
    expect(bystander.framesFor('w').map((f) => f.subscribe)).toEqual([nested(5_000), '"next"']);
    expect(svc.exitCode()).toBeUndefined();
  });

  it(
    'closes a client that stops reading within 5 s when --stall-timeout-ms is 2000, with a reason it can read, while RSS grows by less than 64 MiB',
    { timeout: 60_000 },
    async () => {
      const svc = await start(['--stall-timeout-ms', '2000']);
      const publisher = await connect(svc.url);
      // 100 messages of 30,000 bytes: each subscription replays 3 MB, so 150 of them ask for 450 MB.
      for (let i = 0; i < 100; i++) publisher.send({ id: `p${i}`, publish: { topic: 'bulk', payload: 'a'.repeat(30_000) } });
      await publisher.until(() => publisher.frames.length === 100);
      const before = svc.rssMiB();
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, svc.rssMiB())), 50);
      const slow = await connect(svc.url);
      slow.socket.pause();
      const stalledFrom = Date.now();
      for (let i = 0; i < 150; i++) slow.send({ id: `s${i}`, subscribe: { topic: 'bulk' } });
      const other = await connect(svc.url);
      const latencies: number[] = [];
      try {
        for (let i = 1; !svc.logs.some((l) => /slow consumer/.test(l.line)); i++) {
          if (Date.now() - stalledFrom > 5_000) throw new Error(`not closed within 5 s; log: ${svc.logs.map((l) => l.line).join(' | ')}`);
          const sent = Date.now();
          expect((await other.request({ id: `e${i}`, signal_entry: { state: 'others' } })).signal_entry?.seq).toBe(i);
          latencies.push(Date.now() - sent);
          await sleep(100);
        }
      } finally {
        clearInterval(sampler);
      }
      const closedAfter = svc.logs.find((l) => /slow consumer/.test(l.line))!.at - stalledFrom;
      console.log(`slow consumer closed after ${closedAfter} ms; RSS ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most; others answered within ${Math.max(...latencies)} ms`);
      expect(closedAfter).toBeGreaterThanOrEqual(2_000);
      expect(peak - before).toBeLessThan(64);
      expect(Math.max(...latencies)).toBeLessThan(1_000);
      expect(svc.logs.map((l) => l.line).join('\n')).toMatch(/closing connection from 127\.0\.0\.1:\d+: slow consumer: nothing read \(no write progress for 2000 ms/);
      // What was queued before the close is still delivered, then the close frame with its reason.
      slow.socket.resume();
      await slow.until(() => slow.closed !== undefined, 10_000);
      expect(slow.closed).toEqual({ code: 1008, reason: 'slow consumer: nothing read' });
      expect(slow.frames.length).toBeLessThan(150 * 100);
      expect((await publisher.request({ id: 'after', publish: { topic: 'bulk', payload: 'done' } })).publish?.seq).toBe(101);
    },
  );

  it('closes a client whose unread replies pass --max-queued-bytes', { timeout: 30_000 }, async () => {
    const svc = await start(['--max-queued-bytes', String(1024 * 1024)]);
    const slow = await connect(svc.url);
    slow.socket.pause();
    // Each request is refused with an error that repeats its 30,000-byte id: 1,000 of them make
    // 30 MB of replies, more than the kernel's socket buffers take before ours fills.
    const id = 'x'.repeat(30_000);
    for (let i = 0; i < 1_000; i++) slow.send({ id, frobnicate: i });
    await svc.logged(/slow consumer: send queue full \(\d+ bytes queued and not read; \d+ more would pass the limit of 1048576\)/, 10_000);
    slow.socket.resume();
    await slow.until(() => slow.closed !== undefined, 10_000);
    expect(slow.closed).toEqual({ code: 1008, reason: 'slow consumer: send queue full' });
    const other = await connect(svc.url);
    expect((await other.request({ id: 'e', signal_entry: { state: 's' } })).signal_entry?.seq).toBe(1);
  });

  it('hands a late subscriber that reads a topic nine times its queue limit, in order, and never closes it', { timeout: 30_000 }, async () => {
    const svc = await start(['--max-queued-bytes', String(1024 * 1024), '--stall-timeout-ms', '2000']);
    const publisher = await connect(svc.url);
    for (let i = 0; i < 300; i++) publisher.send({ id: `p${i}`, publish: { topic: 'big', payload: `${i}:${'a'.repeat(30_000)}` } });
    await publisher.until(() => publisher.frames.length === 300);
    const reader = await connect(svc.url);
    reader.send({ id: 's', subscribe: { topic: 'big' } });
    for (let i = 300; i < 310; i++) publisher.send({ id: `p${i}`, publish: { topic: 'big', payload: `${i}:` } });
    await reader.until(() => reader.frames.length === 310, 20_000);
    expect(reader.frames.map((f) => Number((JSON.parse(f.subscribe) as string).split(':')[0]))).toEqual(Array.from({ length: 310 }, (_, i) => i));
    expect(reader.closed).toBeUndefined();
    expect(svc.logs.map((l) => l.line).join('\n')).not.toMatch(/slow consumer/);
  });

  it('closes a connection that sends a frame over 1 MiB with 1009, without reading it', async () => {
    const svc = await start();
    const c = await connect(svc.url);
    c.send(publishFrame('huge', 't', JSON.stringify('x'.repeat(1024 * 1024))));
    await c.until(() => c.closed !== undefined);
    expect(c.closed?.code).toBe(1009);
    await svc.logged(/closing connection from .*Max payload size exceeded/);
    const other = await connect(svc.url);
    expect((await other.request({ id: 'p', publish: { topic: 't', payload: 1 } })).publish?.seq).toBe(1);
  });

  it('refuses a subscription past --max-subscriptions on one connection, and takes one after a cancel', async () => {
    const svc = await start(['--max-subscriptions', '3']);
    const c = await connect(svc.url);
    await c.request({ id: 'p', publish: { topic: 't', payload: 1 } });
    for (const id of ['s1', 's2', 's3']) expect((await c.request({ id, subscribe: { topic: 't' } })).subscribe).toBe('1');
    expect(await c.request({ id: 's4', subscribe: { topic: 't' } })).toMatchObject({ subscribe: '', error: expect.stringMatching(/holds 3 subscriptions.*maxSubscriptions/) });
    c.send({ id: 's1', is_cancel: true });
    expect((await c.request({ id: 's5', subscribe: { topic: 't' } })).subscribe).toBe('1');
    const other = await connect(svc.url);
    expect((await other.request({ id: 'o', subscribe: { topic: 't' } })).subscribe).toBe('1');
  });

  it('answers a 33 KiB publish with an error naming 32768, never delivers it, and passes a 32 KiB one less the envelope', async () => {
    const svc = await start();
    const watcher = await connect(svc.url);
    watcher.send({ id: 'w', subscribe: { topic: 't' } });
    const c = await connect(svc.url);
    const big = publishFrame('big', 't', JSON.stringify('x'.repeat(33 * 1024)));
    expect(await c.request(JSON.parse(big) as { id: string })).toMatchObject({ publish: null, error: expect.stringMatching(/33\d{3} bytes, over the limit of 32768 bytes/) });
    // The frame that hands this to a subscriber id of up to 20 digits is exactly 32768 bytes.
    const envelope = JSON.stringify({ id: '0'.repeat(20), error: '', publish: null, subscribe: '""', signal_entry: null }).length;
    const fitting = 'y'.repeat(32_768 - envelope);
    expect(await c.request({ id: 'fits', publish: { topic: 't', payload: fitting } })).toMatchObject({ error: '', publish: { seq: 1 } });
    expect(await c.request({ id: 'over', publish: { topic: 't', payload: `${fitting}y` } })).toMatchObject({ publish: null, error: expect.stringMatching(/32769-byte message/) });
    await watcher.until(() => watcher.framesFor('w').length === 1);
    const late = await connect(svc.url);
    late.send({ id: 'late', subscribe: { topic: 't' } });
    await late.until(() => late.frames.length === 1);
    await sleep(200);
    for (const sub of [watcher, late]) expect(sub.frames.map((f) => JSON.parse(f.subscribe) as string)).toEqual([fitting]);
    expect(c.closed).toBeUndefined();
  });

  it('keeps counting a state across topic collections, and never hands out a sequence number twice', { timeout: 30_000 }, async () => {
    const svc = await start(['--gc-interval-ms', '100', '--gc-idle-ms', '100']);
    const c = await connect(svc.url);
    expect((await c.request({ id: 'e1', signal_entry: { state: 'counter' } })).signal_entry?.seq).toBe(1);
    c.send({ id: 'b', barrier: { state: 'awaited', target: 2 } });
    expect((await c.request({ id: 'a1', signal_entry: { state: 'awaited' } })).signal_entry?.seq).toBe(1);
    await c.request({ id: 'p', publish: { topic: 'idle', payload: 'gone' } });
    await sleep(800);
    // The idle topic was collected, which shows collection ran, some eight times.
    c.send({ id: 's', subscribe: { topic: 'idle' } });
    await sleep(200);
    expect(c.framesFor('s')).toEqual([]);
    expect((await c.request({ id: 'e2', signal_entry: { state: 'counter' } })).signal_entry?.seq).toBe(2);
    expect((await c.request({ id: 'a2', signal_entry: { state: 'awaited' } })).signal_entry?.seq).toBe(2);
    await c.until(() => c.framesFor('b').length === 1);
    expect((await c.request({ id: 'b2', barrier: { state: 'counter', target: 2 } })).error).toBe('');
  });

  it('refuses a new state past --max-states and keeps counting the states it has', async () => {
    const svc = await start(['--max-states', '2']);
    const c = await connect(svc.url);
    await c.request({ id: 'a', signal_entry: { state: 'a' } });
    await c.request({ id: 'b', barrier: { state: 'b', target: 0 } });
    c.send({ id: 'bw', barrier: { state: 'b', target: 1 } });
    expect(await c.request({ id: 'c', signal_entry: { state: 'c' } })).toMatchObject({ signal_entry: null, error: expect.stringMatching(/keeps 2 distinct states \(maxStates\)/) });
    expect(await c.request({ id: 'cb', barrier: { state: 'c', target: 1 } })).toMatchObject({ error: expect.stringMatching(/maxStates/) });
    expect((await c.request({ id: 'a2', signal_entry: { state: 'a' } })).signal_entry?.seq).toBe(2);
    expect((await c.request({ id: 'b1', signal_entry: { state: 'b' } })).signal_entry?.seq).toBe(1);
    await c.until(() => c.framesFor('bw').length === 1);
    await svc.logged(/failed request "c" .*maxStates/);
  });
});
