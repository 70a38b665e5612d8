// Behaviour of our sync service beyond what the Go one guarantees.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { SyncState } from '../../helpers/sync-service/state.ts';
import { firstLine } from '../helpers/process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { sdkClient } from '../helpers/sdk-client.ts';

describe('our sync service', () => {
  let service: SyncService | undefined;
  const logged: string[] = [];
  afterEach(async () => {
    await service?.close();
    service = undefined;
    logged.length = 0;
  });
  const start = async () => {
    service = await startSyncService({ port: 0, log: (_level, message) => logged.push(message) });
    return service;
  };

  it.each([
    ['a frame that is not JSON', 'nope', '', /frame is not JSON/],
    ['a request without an id', { signal_entry: { state: 'x' } }, '', /id: expected a string id/],
    ['a request with an empty id', { id: '', signal_entry: { state: 'x' } }, '', /id: expected a non-empty id/],
    ['a request with no known operation', { id: 'nop', frobnicate: {} }, 'nop', /no operation/],
    ['a barrier with a negative target', { id: 'neg', barrier: { state: 'x', target: -1 } }, 'neg', /barrier\.target: expected a target >= 0/],
    ['a barrier with a fractional target', { id: 'frac', barrier: { state: 'x', target: 1.5 } }, 'frac', /barrier\.target/],
    ['a publish without a topic', { id: 'pt', publish: { payload: 1 } }, 'pt', /publish\.topic/],
  ])('answers %s with an error response, logs it, and keeps the connection', async (_name, frame, id, message) => {
    const { url } = await start();
    const c = await RawClient.connect(url);
    c.send(frame);
    await c.until(() => c.frames.length === 1);
    expect(c.frames[0]).toMatchObject({ id, error: expect.stringMatching(message) });
    expect(logged.join('\n')).toMatch(message);
    expect((await c.request({ id: 'ok', signal_entry: { state: 's' } })).signal_entry?.seq).toBe(1);
    expect(c.closed).toBeUndefined();
    c.close();
  });

  it('closes a connection that sends a binary frame, with a logged reason, and serves the others', async () => {
    const { url } = await start();
    const bad = await RawClient.connect(url);
    const good = await RawClient.connect(url);
    bad.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    await bad.until(() => bad.closed !== undefined);
    expect(bad.closed?.code).toBe(1003);
    expect(logged.join('\n')).toMatch(/binary frame/);
    expect((await good.request({ id: 'e', signal_entry: { state: 's' } })).signal_entry?.seq).toBe(1);
    good.close();
  });

  it('never delivers a message to a cancelled subscription', async () => {
    const { url } = await start();
    const c = await RawClient.connect(url);
    await c.request({ id: 'p0', publish: { topic: 't', payload: 0 } });
    await c.request({ id: 's', subscribe: { topic: 't' } });
    c.send({ id: 's', is_cancel: true });
    for (let i = 1; i <= 20; i++) await c.request({ id: `p${i}`, publish: { topic: 't', payload: i } });
    expect(c.framesFor('s').map((f) => f.subscribe)).toEqual(['0']);
    c.close();
  });

  it('drops the waiters and subscriptions of a connection when it closes, and keeps its counts', async () => {
    const svc = await start();
    const c = await RawClient.connect(svc.url);
    c.send({ id: 'b', barrier: { state: 'never', target: 5 } });
    c.send({ id: 's', subscribe: { topic: 'quiet' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(svc.state.size).toEqual({ topics: 1, states: 1, awaited: 1 });
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(svc.state.size).toEqual({ topics: 1, states: 1, awaited: 0 });
    expect(svc.state.collect(Date.now() + 11 * 60_000)).toEqual({ topics: 1 });
    expect(svc.state.size).toEqual({ topics: 0, states: 1, awaited: 0 });
  });

  it('collects idle topics but keeps those still followed, and never forgets a count', () => {
    const state = new SyncState({ gc: { idleMs: 1_000 } });
    const live = new AbortController();
    state.publish('idle-topic', 1);
    state.signalEntry('counted');
    state.subscribe('watched-topic', () => {}, live.signal);
    void state.barrier('awaited', 2, live.signal).catch(() => {});
    const now = Date.now();
    expect(state.collect(now + 500)).toEqual({ topics: 0 });
    expect(state.collect(now + 1_500)).toEqual({ topics: 1 });
    expect(state.size).toEqual({ topics: 1, states: 2, awaited: 1 });
    live.abort();
    expect(state.collect(now + 1_500)).toEqual({ topics: 1 });
    expect(state.size).toEqual({ topics: 0, states: 2, awaited: 0 });
    expect(state.signalEntry('counted')).toBe(2);
    state.close();
  });

  it('binds only the requested address and picks a free port for port 0', async () => {
    const a = await startSyncService({ port: 0, log: () => {} });
    const b = await startSyncService({ port: 0, log: () => {} });
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.url).toBe(`ws://127.0.0.1:${a.port}`);
      await expect(startSyncService({ port: a.port, log: () => {} })).rejects.toMatchObject({ code: 'E_SYNC' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the sync-service bin', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'prints its address first, serves the SDK client, and exits 0 on %s',
    async (signal) => {
      const child = execa('node', ['bin/sync-service.js', '--port', '0'], { reject: false });
      try {
        const url = await firstLine(child.stdout!, AbortSignal.timeout(15_000));
        expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
        const client = await sdkClient(url, `bin-${signal}`);
        expect(await client.signalEntry('s')).toBe(1);
        const barrier = await client.barrier('s', 1);
        await barrier.wait;
        expect(await client.publish('t', { hello: 'world' })).toBe(1);
        const sub = await client.subscribe('t');
        expect((await sub.wait.next()).value).toEqual({ hello: 'world' });
        sub.cancel();
        client.close();
      } finally {
        child.kill(signal);
      }
      const result = await child;
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain(`${signal}: shutting down`);
    },
  );

  it('rejects a bad port with a usage line and exit code 2', async () => {
    const result = await execa('node', ['bin/sync-service.js', '--port', 'many'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--port: .*\nusage: sync-service/);
  });
});
