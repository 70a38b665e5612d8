// Choosing a runner: pure mapping, one-line errors for bad lists, and the real bin
// handing out runners to concurrent instances through our sync service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { localSystem, parseRunners, pickIndex, runnerParams, type Overflow } from '../../helpers/choose-server/index.ts';
import { packParams } from '../../helpers/runenv/index.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { instanceEnv } from '../runenv/contract.ts';

const RUNNERS = '[{"name":"a","arch":"x86_64-linux"},{"name":"b","arch":"aarch64-linux"},{"name":"localhost"}]';
const oversized = JSON.stringify([{ name: 'localhost', build: 'local', pad: 'x'.repeat(300 * 1024) }]);

// Bad `remote-runners` values, each with the start of the one line it must produce.
const badRunners: Array<[string, string, RegExp]> = [
  ['invalid JSON', '[{"name":', /^param remote-runners: invalid JSON: /],
  ['not a list', '{"name":"localhost"}', /^param remote-runners: .*expected array/],
  ['an empty list', '[]', /^param remote-runners: expected at least one runner/],
  ['a host without arch', '[{"name":"h"}]', /^param remote-runners\[0\]\.arch: arch is required for every host but localhost/],
  ['an unknown field', '[{"name":"localhost","zone":"x"}]', /^param remote-runners\[0\]: .*"zone"/],
  ['an unknown arch', '[{"name":"localhost"},{"name":"h","arch":"sparc-linux"}]', /^param remote-runners\[1\]\.arch: expected one of x86_64-linux, .* \(got "sparc-linux"\)/],
  ['an alias with shell metacharacters', '[{"name":"h;rm -rf /","arch":"x86_64-linux"}]', /^param remote-runners\[0\]\.name: expected an ssh host alias/],
  ['an alias that looks like an option', '[{"name":"-oProxyCommand=x","arch":"x86_64-linux"}]', /^param remote-runners\[0\]\.name: expected an ssh host alias/],
  ['an oversized list', oversized, /^param remote-runners: \d+ bytes is larger than the \d+ allowed/],
];

describe('pickIndex', () => {
  it.each<[Overflow, number[]]>([
    ['round-robin', [0, 1, 2, 0, 1, 2, 0]],
    ['first', [0, 1, 2, 0, 0, 0, 0]],
  ])('maps seq 1..7 onto 3 runners under %s', (overflow, expected) => {
    expect([1, 2, 3, 4, 5, 6, 7].map((seq) => pickIndex(seq, 3, overflow))).toEqual(expected);
  });

  it('hands out each runner once, then refuses under error', () => {
    expect([1, 2, 3].map((seq) => pickIndex(seq, 3, 'error'))).toEqual([0, 1, 2]);
    expect(() => pickIndex(4, 3, 'error')).toThrow(/^param remote-runners: instance 4 has no runner: the list has 3 and remote-runners-overflow is "error"$/);
  });

  it.each([0, -1, 1.5])('refuses the sequence number %s', (seq) => {
    expect(() => pickIndex(seq, 3, 'round-robin')).toThrow(TgError);
  });
});

describe('the remote-runners param', () => {
  it('accepts localhost without arch and hosts with arch and build', () => {
    expect(parseRunners('[{"name":"localhost"},{"name":"lab-h1","arch":"x86_64-linux","build":"remote"}]')).toEqual([
      { name: 'localhost' },
      { name: 'lab-h1', arch: 'x86_64-linux', build: 'remote' },
    ]);
  });

  it('defaults to localhost and round-robin when neither param is set', () => {
    expect(runnerParams({ params: {} })).toEqual({ runners: [{ name: 'localhost' }], overflow: 'round-robin' });
  });

  it('names remote-runners-overflow when its value is unknown', () => {
    expect(() => runnerParams({ params: { 'remote-runners-overflow': 'random' } })).toThrow(/^param remote-runners-overflow: /);
  });

  it.each(badRunners)('refuses %s with one line naming the param and the path', (_name, text, message) => {
    let error: unknown;
    try {
      parseRunners(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TgError);
    expect((error as TgError).code).toBe('E_PARAM');
    expect((error as TgError).message).toMatch(message);
    expect((error as TgError).message).not.toContain('\n');
  });
});

describe('the choose-server bin', () => {
  let sync: SyncService;
  let runs = 0;
  beforeAll(async () => {
    sync = await startSyncService({ port: 0, log: () => {} });
  });
  afterAll(async () => {
    await sync?.close();
  });

  // The environment of one instance of a fresh run with `params`.
  const runEnv = (run: string, params: Record<string, string>, count = 5) =>
    instanceEnv({
      TEST_RUN: run,
      TEST_CASE: 'server-client',
      TEST_GROUP_INSTANCE_COUNT: String(count),
      TEST_INSTANCE_COUNT: String(count),
      TEST_INSTANCE_PARAMS: packParams(params),
      SYNC_SERVICE_HOST: '127.0.0.1',
      SYNC_SERVICE_PORT: String(sync.port),
    });
  const chooseServer = (env: Record<string, string>, args: string[] = []) =>
    execa('node', ['bin/choose-server.js', ...args], { env, extendEnv: false, reject: false, timeout: 30_000 });

  it('hands runners 0,1,2,0,1 to five concurrent instances', async () => {
    const env = runEnv(`choose-${++runs}`, { 'remote-runners': RUNNERS });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => chooseServer(env)));
    for (const r of results) expect(r, r.stderr).toMatchObject({ exitCode: 0, stderr: '' });
    expect(results.map((r) => r.stdout).sort()).toEqual(
      ['a,x86_64-linux', 'a,x86_64-linux', 'b,aarch64-linux', 'b,aarch64-linux', `localhost,${localSystem()}`].sort(),
    );
  });

  it('prints each choice as JSON with --json, one index per sequence number', async () => {
    const env = runEnv(`choose-${++runs}`, { 'remote-runners': RUNNERS });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => chooseServer(env, ['--json'])));
    const choices = results.map((r) => JSON.parse(r.stdout) as { seq: number; index: number; name: string });
    expect(choices.map((c) => c.index).sort()).toEqual([0, 0, 1, 1, 2]);
    expect(choices.map((c) => c.seq).sort()).toEqual([1, 2, 3, 4, 5]);
    for (const c of choices) expect(c.index).toBe((c.seq - 1) % 3);
  });

  it('fails the fourth and fifth instance with one line when remote-runners-overflow is error', async () => {
    const env = runEnv(`choose-${++runs}`, { 'remote-runners': RUNNERS, 'remote-runners-overflow': 'error' });
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => chooseServer(env, ['--json'])));
    const ok = results.filter((r) => r.exitCode === 0);
    const failed = results.filter((r) => r.exitCode !== 0);
    expect(ok.map((r) => (JSON.parse(r.stdout) as { index: number }).index).sort()).toEqual([0, 1, 2]);
    expect(failed).toHaveLength(2);
    for (const r of failed) {
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^choose-server: param remote-runners: instance [45] has no runner: the list has 3 and remote-runners-overflow is "error"$/);
    }
  });

  // Linux refuses one environment string over 128 KiB (E2BIG), so an oversized list never reaches the bin.
  const fitsTheEnvironment = badRunners.filter(([, text]) => Buffer.byteLength(text) < 128 * 1024 - 100);

  it.each(fitsTheEnvironment)('exits non-zero with exactly one stderr line for %s', async (_name, text, message) => {
    const result = await chooseServer(runEnv(`choose-bad-${++runs}`, { 'remote-runners': text }));
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.replace(/^choose-server: /, '')).toMatch(message);
  });

  it('takes no sequence number for a bad list', async () => {
    const run = `choose-${++runs}`;
    expect((await chooseServer(runEnv(run, { 'remote-runners': '[]' }))).exitCode).toBe(1);
    const good = await chooseServer(runEnv(run, { 'remote-runners': RUNNERS }), ['--json']);
    expect(JSON.parse(good.stdout)).toMatchObject({ seq: 1, index: 0, name: 'a' });
  });
});
