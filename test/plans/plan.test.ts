// The plan run as Testground runs it: one process per instance, a hand-made run
// environment, our sync service, and the SDK's run events on stdout.
import { readFile, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runKeys, startSyncService, SyncClient, type SyncService } from '../../helpers/sync-service/index.ts';
import { awkwardValues } from '../runenv/contract.ts';
import { eventKinds, messages, runEvents, specEnv, startInstance, tempRoot, type InstanceSpec } from './instance.ts';

// Every instance's output, for failure messages.
function outputs(results: Array<{ stdout: string; stderr: string }>): string {
  return results.map((r, i) => `--- instance ${i + 1}\n${r.stdout}\n${r.stderr}`).join('\n');
}

// A port nothing listens on: bound once by us, then released.
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the remote-runner plan', () => {
  let sync: SyncService;
  let temp: Awaited<ReturnType<typeof tempRoot>>;
  let runs = 0;
  const children: Array<ReturnType<typeof startInstance>> = [];

  beforeAll(async () => {
    sync = await startSyncService({ port: 0, log: () => {} });
  });
  afterAll(async () => {
    await sync?.close();
  });
  beforeEach(async () => {
    temp = await tempRoot();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await child;
    }
    await temp.remove();
  });

  // One instance of a fresh run of `testCase`.
  const spec = async (testCase: string, more: Partial<InstanceSpec> = {}): Promise<InstanceSpec> => ({
    syncPort: sync.port,
    run: `plan-${testCase}-${++runs}`,
    testCase,
    dirs: await temp.dirs(`${testCase}-${runs}`),
    ...more,
  });
  const start = (s: InstanceSpec) => {
    const child = startInstance(s);
    children.push(child);
    return child;
  };

  it('ok: exits 0 with a success event on stdout and on the sync service', async () => {
    const s = await spec('ok');
    const result = await start(s);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(eventKinds(result.stdout)).toEqual(['start_event', 'message_event', 'success_event']);
    expect(runEvents(result.stdout).at(-1)).toEqual({ success_event: { group: 'single' } });

    const client = await SyncClient.connect(sync.url);
    const seen: string[] = [];
    const stop = AbortSignal.timeout(5_000);
    for await (const event of client.subscribe(runKeys({ run: s.run, plan: 'remote-runner', testCase: 'ok' }).events, stop)) {
      seen.push(...Object.keys(event as object));
      if (seen.length === 3) break;
    }
    client.close();
    expect(seen).toEqual(['start_event', 'message_event', 'success_event']);
  });

  it('keeps the SDK log file named stdout in TEST_TEMP_PATH, out of the working directory', async () => {
    const s = await spec('ok');
    expect((await start(s)).exitCode).toBe(0);
    expect(await readdir(s.dirs.cwd)).toEqual([]);
    expect(await readdir(s.dirs.temp)).toEqual(['stdout']);
    expect(await readdir(s.dirs.outputs)).toEqual(['run.out']);
  });

  it('fail: exits 1 with a failure event naming the reason', async () => {
    const result = await start(await spec('fail'));
    expect(result.exitCode).toBe(1);
    const failure = runEvents(result.stdout).find((e) => e.failure_event)?.failure_event;
    expect(failure).toEqual({ group: 'single', error: 'Error: fail: this test case fails on purpose' });
    expect(eventKinds(result.stdout)).not.toContain('success_event');
  });

  it.each([
    ['SIGKILL', undefined, 'SIGKILL', undefined],
    ['SIGTERM', 'SIGTERM', 'SIGTERM', undefined],
    ['exit', 'exit', undefined, 3],
  ])('crash (%s): dies without a result event', async (_name, crashSignal, signal, exitCode) => {
    const params: Record<string, string> = crashSignal ? { crash_signal: crashSignal } : {};
    const result = await start(await spec('crash', { params }));
    expect(result.signal).toBe(signal);
    expect(result.exitCode).toBe(exitCode);
    const kinds = eventKinds(result.stdout);
    expect(kinds).toContain('start_event');
    expect(kinds).not.toContain('success_event');
    expect(kinds).not.toContain('failure_event');
  });

  it('crash: fails with one line when crash_signal names no signal', async () => {
    const result = await start(await spec('crash', { params: { crash_signal: 'SIGNOPE' } }));
    expect(result.exitCode).toBe(1);
    expect(runEvents(result.stdout).find((e) => e.failure_event)?.failure_event?.error).toMatch(/param crash_signal: expected "exit" or a signal name/);
  });

  it('stall: is still running after 2 s, having said so, until it is killed', async () => {
    const child = start(await spec('stall'));
    await new Promise((r) => setTimeout(r, 2_000));
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    const result = await child;
    expect(result.signal).toBe('SIGTERM');
    expect(messages(result.stdout)).toEqual(['stalling']);
    expect(eventKinds(result.stdout)).not.toContain('success_event');
  });

  it('inspect: writes the environment and params exactly as received', async () => {
    const params = { ...awkwardValues, 'remote-runners': '[{"name":"localhost"}]' };
    const s = await spec('inspect', { params, env: { TEST_INSTANCE_ROLE: 'role with spaces = "x"', TEST_TAG: '`tag` $(x) ✓' } });
    const result = await start(s);
    expect(result.exitCode, result.stderr).toBe(0);
    const written = JSON.parse(await readFile(join(s.dirs.outputs, 'runenv.json'), 'utf8')) as { env: unknown; params: unknown };
    expect(written.env).toEqual(specEnv(s));
    expect(written.params).toEqual(params);
  });

  it('inspect: runs without the optional variables, TEST_SUBNET included, and reports them absent', async () => {
    const s = await spec('inspect', { unset: ['TEST_SUBNET', 'TEST_START_TIME', 'INFLUXDB_URL', 'TEST_SIDECAR', 'TEST_REPO'] });
    const result = await start(s);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    const written = JSON.parse(await readFile(join(s.dirs.outputs, 'runenv.json'), 'utf8')) as { env: Record<string, string> };
    expect(written.env).toEqual(specEnv(s));
    expect(written.env).not.toHaveProperty('TEST_SUBNET');
  });

  it('server-client: three instances of one group all succeed and the clients say which address answered', async () => {
    const first = await spec('server-client', { count: 3, params: { timeout_secs: '30' } });
    const specs = [first, ...(await Promise.all([1, 2].map(async (i) => ({ ...first, dirs: await temp.dirs(`server-client-${runs}-${i}`) }))))];
    const results = await Promise.all(specs.map((s) => start(s)));
    expect(results.map((r) => r.exitCode), outputs(results)).toEqual([0, 0, 0]);
    for (const r of results) expect(eventKinds(r.stdout).at(-1)).toBe('success_event');
    const said = results.map((r) => messages(r.stdout));
    const servers = said.filter((m) => m.some((line) => line.startsWith('server:')));
    const clients = said.filter((m) => m.some((line) => line.startsWith('client:')));
    expect(servers).toHaveLength(1);
    expect(servers[0]).toContain('server: 2 clients done');
    expect(clients).toHaveLength(2);
    for (const m of clients) expect(m).toEqual([expect.stringMatching(/^client: http:\/\/[\d.]+:\d+ answered pong$/)]);
  });

  it('server-client: a single instance serves and succeeds alone', async () => {
    const result = await start(await spec('server-client', { count: 1 }));
    expect(result.exitCode, result.stdout).toBe(0);
    expect(messages(result.stdout)).toContain('server: 0 clients done');
  });

  // The first message the server of run `run` published on server-addresses.
  async function published(run: string): Promise<{ addresses: string[] }> {
    const client = await SyncClient.connect(sync.url);
    try {
      const topic = runKeys({ run, plan: 'remote-runner', testCase: 'server-client' }).topic('server-addresses');
      for await (const message of client.subscribe(topic, AbortSignal.timeout(5_000))) return message as { addresses: string[] };
      throw new Error('no message');
    } finally {
      client.close();
    }
  }

  it('server-client: publishes every IPv4 address with 127.0.0.1 last, or only server_ip when set', async () => {
    const all = await spec('server-client', { count: 1 });
    expect((await start(all)).exitCode).toBe(0);
    const everything = (await published(all.run)).addresses;
    expect(everything.at(-1)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const a of everything) expect(a).toMatch(/^http:\/\/(\d+\.){3}\d+:\d+$/);

    const only = await spec('server-client', { count: 2, params: { server_ip: '127.0.0.1', timeout_secs: '30' } });
    const results = await Promise.all([only, { ...only, dirs: await temp.dirs(`server-ip-${runs}`) }].map((s) => start(s)));
    expect(results.map((r) => r.exitCode), outputs(results)).toEqual([0, 0]);
    const { addresses } = await published(only.run);
    expect(addresses).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)]);
    expect(results.flatMap((r) => messages(r.stdout))).toContain(`client: ${addresses[0]} answered pong`);
  });

  it('server-client: a client names every address it tried, and why, when none answers', async () => {
    // A server that is not there: enrol and publish two closed ports by hand, then run one client.
    const s = await spec('server-client', { count: 2, params: { timeout_secs: '4' } });
    const keys = runKeys({ run: s.run, plan: 'remote-runner', testCase: 'server-client' });
    const dead = [await closedPort(), await closedPort()].map((port) => `http://127.0.0.1:${port}`);
    const client = await SyncClient.connect(sync.url);
    await client.signalEntry(keys.state('enrolled'));
    await client.publish(keys.topic('server-addresses'), { addresses: dead });
    client.close();
    const result = await start(s);
    expect(result.exitCode).toBe(1);
    const error = String(runEvents(result.stdout).find((e) => e.failure_event)?.failure_event?.error);
    expect(error).toMatch(/no server address answered pong in \d+ rounds over 4 s: /);
    expect(error).toContain(`${dead[0]} (fetch failed: ECONNREFUSED), ${dead[1]} (fetch failed: ECONNREFUSED)`);
  });

  it('server-client: a client refuses a malformed message on server-addresses, naming the path', async () => {
    const s = await spec('server-client', { count: 2, params: { timeout_secs: '4' } });
    const keys = runKeys({ run: s.run, plan: 'remote-runner', testCase: 'server-client' });
    const client = await SyncClient.connect(sync.url);
    await client.signalEntry(keys.state('enrolled'));
    await client.publish(keys.topic('server-addresses'), { addresses: ['ftp://x'] });
    client.close();
    const result = await start(s);
    expect(result.exitCode).toBe(1);
    expect(runEvents(result.stdout).find((e) => e.failure_event)?.failure_event?.error).toMatch(
      /client: the message on server-addresses is invalid: \.addresses\[0\]: expected http:\/\/<host>:<port>/,
    );
  });

  it('server-client: the server fails after timeout_secs when its clients never come', async () => {
    const result = await start(await spec('server-client', { count: 2, params: { timeout_secs: '1' } }));
    expect(result.exitCode).toBe(1);
    expect(runEvents(result.stdout).find((e) => e.failure_event)?.failure_event?.error).toMatch(
      /server: waiting for 1 client on client-done: no answer within 1 s/,
    );
  });

  it('refuses an unknown test case with one line and no SDK output', async () => {
    const result = await start(await spec('nope'));
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('plan: run environment: TEST_CASE: unknown test case "nope" (expected one of server-client, ok, fail, crash, stall, inspect, sleep, hostile-outputs, escape, chatty, big-outputs, one-crashes)');
  });

  it('refuses a bad run environment with one line naming the variable', async () => {
    const result = await start(await spec('ok', { env: { TEST_INSTANCE_COUNT: 'many' } }));
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^plan: run environment: TEST_INSTANCE_COUNT: expected a whole number \(got "many"\)$/);
  });

  it('refuses an unreachable sync service with one line naming its address', async () => {
    const port = await closedPort();
    const result = await start(await spec('ok', { syncPort: port }));
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^plan: sync service ws://127\\.0\\.0\\.1:${port}: cannot connect: .*ECONNREFUSED`));
    expect(result.stderr.trim()).not.toContain('\n');
  });
});
