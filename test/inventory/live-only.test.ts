// choose-server with remote-runners-live-only: an explicit param that probes the runners first
// and maps the sequence number onto the live ones. A fake probe stands in for real hosts here.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseServer, liveParams, liveRunners, type RunnerProbe } from '../../helpers/choose-server/choose.ts';
import { localSystem, type Runner } from '../../helpers/runners/runners.ts';
import { packParams, parseRunEnv } from '../../helpers/runenv/index.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { instanceEnv } from '../runenv/contract.ts';

const RUNNERS: Runner[] = [
  { name: 'a', arch: 'x86_64-linux' },
  { name: 'b', arch: 'x86_64-linux' },
  { name: 'c', arch: 'aarch64-linux' },
];

// A probe that answers from `down` (host -> why) and records what it was asked.
function fakeProbe(down: Record<string, string>): RunnerProbe & { calls: Array<{ names: string[]; timeoutMs: number }> } {
  const calls: Array<{ names: string[]; timeoutMs: number }> = [];
  const probe = async (runners: Runner[], options: { timeoutMs: number }) => {
    calls.push({ names: runners.map((r) => r.name), timeoutMs: options.timeoutMs });
    return runners.map((r) => (down[r.name] ? { state: 'down' as const, detail: down[r.name]! } : { state: 'up' as const, detail: 'nix-store (Nix) 2.18.1' }));
  };
  return Object.assign(probe, { calls });
}

describe('liveRunners', () => {
  it('keeps every runner, in order, when all are up', async () => {
    const lines: string[] = [];
    expect(await liveRunners(RUNNERS, fakeProbe({}), { timeoutMs: 1000, log: (l) => lines.push(l) })).toEqual(RUNNERS);
    expect(lines).toEqual([]);
  });

  it('drops a down runner and names it and the reason on the log', async () => {
    const lines: string[] = [];
    const probe = fakeProbe({ b: 'ssh b (10.0.0.2:22): connection refused' });
    expect(await liveRunners(RUNNERS, probe, { timeoutMs: 1500, log: (l) => lines.push(l) })).toEqual([RUNNERS[0], RUNNERS[2]]);
    expect(lines).toEqual(['choose-server: remote-runners-live-only: dropping b: ssh b (10.0.0.2:22): connection refused']);
    expect(probe.calls).toEqual([{ names: ['a', 'b', 'c'], timeoutMs: 1500 }]);
  });

  it('fails with one line naming every host and its reason when none is up', async () => {
    const probe = fakeProbe({ a: 'connection refused', b: 'no answer within 1 s (connecting)', c: 'no Nix' });
    const error = await liveRunners(RUNNERS, probe, { timeoutMs: 1000, log: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TgError);
    expect((error as TgError).message).toBe(
      'param remote-runners: no runner is up, and remote-runners-live-only is true: a (connection refused); b (no answer within 1 s (connecting)); c (no Nix)',
    );
  });
});

describe('liveParams', () => {
  it.each<[Record<string, string>, { liveOnly: boolean; timeoutMs: number }]>([
    [{}, { liveOnly: false, timeoutMs: 5000 }],
    [{ 'remote-runners-live-only': 'true' }, { liveOnly: true, timeoutMs: 5000 }],
    [{ 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': '1500ms' }, { liveOnly: true, timeoutMs: 1500 }],
    [{ 'remote-runners-live-only': 'yes', 'remote-runners-check-timeout': '2' }, { liveOnly: true, timeoutMs: 2000 }],
    [{ 'remote-runners-live-only': 'false', 'remote-runners-check-timeout': 'soon' }, { liveOnly: false, timeoutMs: 5000 }],
  ])('reads %j', (params, expected) => {
    expect(liveParams({ params })).toEqual(expected);
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ 'remote-runners-live-only': 'maybe' }, /^param remote-runners-live-only: expected true or false, got "maybe"$/],
    [{ 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': 'soon' }, /^param remote-runners-check-timeout: expected a duration such as 5s, 500ms or 1m \(up to 24h\), got "soon"$/],
    [{ 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': '0s' }, /^param remote-runners-check-timeout: expected a duration/],
  ])('refuses %j with one line naming the param', (params, message) => {
    expect(() => liveParams({ params })).toThrow(message);
  });
});

describe('chooseServer with remote-runners-live-only', () => {
  let sync: SyncService;
  let runs = 0;
  let dir: string;
  beforeAll(async () => {
    sync = await startSyncService({ port: 0, log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'inventory-live-only-'));
  });
  afterAll(async () => {
    await sync?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const envFor = (run: string, params: Record<string, string>) =>
    instanceEnv({
      TEST_RUN: run,
      TEST_CASE: 'server-client',
      TEST_GROUP_INSTANCE_COUNT: '4',
      TEST_INSTANCE_COUNT: '4',
      TEST_INSTANCE_PARAMS: packParams(params),
      SYNC_SERVICE_HOST: '127.0.0.1',
      SYNC_SERVICE_PORT: String(sync.port),
    });

  it('maps four instances onto the two live runners, keeping each index into the whole list', async () => {
    const probe = fakeProbe({ b: 'connection refused' });
    const env = parseRunEnv(
      envFor(`live-${++runs}`, { 'remote-runners': JSON.stringify(RUNNERS), 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': '3s' }),
    );
    const lines: string[] = [];
    const choices = await Promise.all([1, 2, 3, 4].map(() => chooseServer(env, { probe, log: (l) => lines.push(l), signal: AbortSignal.timeout(10_000) })));
    const bySeq = choices.sort((x, y) => x.seq - y.seq).map((c) => [c.seq, c.name, c.index]);
    expect(bySeq).toEqual([
      [1, 'a', 0],
      [2, 'c', 2],
      [3, 'a', 0],
      [4, 'c', 2],
    ]);
    expect(probe.calls.map((c) => c.timeoutMs)).toEqual([3000, 3000, 3000, 3000]);
    expect(lines).toHaveLength(4);
  });

  it('never probes when the param is not set', async () => {
    const probe: RunnerProbe = async () => {
      throw new Error('the probe must not run');
    };
    const env = parseRunEnv(envFor(`live-${++runs}`, { 'remote-runners': JSON.stringify(RUNNERS) }));
    expect(await chooseServer(env, { probe })).toMatchObject({ seq: 1, index: 0, name: 'a' });
    expect(await chooseServer(env, { probe })).toMatchObject({ seq: 2, index: 1, name: 'b' });
  });

  it('takes no sequence number when no runner is live', async () => {
    const run = `live-${++runs}`;
    const params = { 'remote-runners': JSON.stringify(RUNNERS), 'remote-runners-live-only': 'true' };
    const dead = fakeProbe({ a: 'refused', b: 'refused', c: 'refused' });
    await expect(chooseServer(parseRunEnv(envFor(run, params)), { probe: dead, log: () => {} })).rejects.toThrow(/no runner is up/);
    expect(await chooseServer(parseRunEnv(envFor(run, params)), { probe: fakeProbe({}) })).toMatchObject({ seq: 1, name: 'a' });
  });

  it('lets the choose-server bin drop a host that does not resolve and pick localhost, from a machines file', async () => {
    const machines = join(dir, 'machines');
    await writeFile(machines, `# one real host, one that does not exist\nlocalhost\nssh://root@no-such-host.invalid ${localSystem()}\n`);
    const env = envFor(`live-${++runs}`, { 'remote-runners': `@${machines}`, 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': '4s' });
    const started = performance.now();
    const results = await Promise.all([1, 2].map(() => execa('node', ['bin/choose-server.js'], { env, extendEnv: false, reject: false, timeout: 30_000 })));
    expect(performance.now() - started).toBeLessThan(4_000 + 10_000);
    for (const result of results) {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toBe(`localhost,${localSystem()}`);
      expect(result.stderr).toMatch(/^choose-server: remote-runners-live-only: dropping no-such-host\.invalid: .*no-such-host\.invalid/);
    }
  });
});
