// The remote runner against real lab hosts: closure copy, forwarding, exact
// environment, outputs, cleanup and interruptions.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { buildRunner, labDown, labExec, labUp } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { readResult, removeAll, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let build: { runner: string; plan: string };

const runners = (...hosts: string[]) => JSON.stringify(hosts.map((name) => (name === 'localhost' ? { name } : { name, arch: 'x86_64-linux' })));

async function tgRun(testcase: string, instances: number, hosts: string[], extra: string[] = []) {
  const outputs = await tempDir('tg-remote-');
  dirs.push(outputs);
  const child = startTgRun(
    ['single', '--plan', '.', '--testcase', testcase, '--instances', String(instances), '--use-build', build.runner, '--outputs-dir', outputs,
      '--test-param', `remote-runners=${runners(...hosts)}`, ...extra],
    { env: { PATH: process.env.PATH! } },
  );
  return { child, outputs };
}

async function workDirs(host: string): Promise<string[]> {
  return (await labExec(host, ['sh', '-c', 'ls -d /tmp/remote-runner-* 2>/dev/null || true'])).stdout.split('\n').filter(Boolean);
}

beforeAll(async () => {
  build = await buildRunner();
  await labUp(3);
}, 600_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('the remote runner on lab hosts', { timeout: 120_000 }, () => {
  it('copies the closure to a host whose store lacks it, and runs the app there', async () => {
    expect((await labExec('lab-h1', ['nix-store', '--check-validity', build.plan])).exitCode).not.toBe(0);
    const { child, outputs } = await tgRun('ok', 1, ['lab-h1']);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows).toEqual([{ instance: 'single[000]', group: 'single', host: 'lab-h1', outcome: 'success' }]);
    expect((await labExec('lab-h1', ['nix-store', '--check-validity', build.plan])).exitCode).toBe(0);
    expect(r.stderr).toMatch(/lab-h1 \(x86_64-linux\): copy, [1-9]\d* paths, [\d.]+ MB/);
  });

  it('copies the closure once when four instances share a host', async () => {
    const { child, outputs } = await tgRun('ok', 4, ['lab-h2']);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    const copies = r.stderr.split('\n').filter((l) => /lab-h2 \(x86_64-linux\): copy,/.test(l));
    expect(copies).toHaveLength(4);
    expect(copies.filter((l) => /of \d+ in the closure/.test(l))).toHaveLength(1);
    expect(copies.filter((l) => /copied by another instance of this run/.test(l))).toHaveLength(3);
    expect(r.rows.map((row) => [row.host, row.outcome])).toEqual(Array(4).fill(['lab-h2', 'success']));
  });

  it('sends no path that the host already holds', async () => {
    const { child, outputs } = await tgRun('ok', 1, ['lab-h1']);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/lab-h1 \(x86_64-linux\): copy, 0 paths, 0\.0 MB, .*already present/);
  });

  it('hands the app on a lab host every value byte for byte and runs none of them', async () => {
    const values = {
      quotes: `'single' "double"`,
      subshell: '$(touch /tmp/pwned-subshell)',
      backticks: '`touch /tmp/pwned-backtick`',
      semicolon: 'a; touch /tmp/pwned-semicolon',
      newline: 'line one\nline two; touch /tmp/pwned-newline',
      unicode: 'Grüße 世界 🚀 \u00a0',
      equals: 'k=v=w',
    };
    const params = Object.entries(values).flatMap(([k, v]) => ['--test-param', `${k}=${v}`]);
    const { child, outputs } = await tgRun('inspect', 1, ['lab-h3'], params);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    const dump = JSON.parse(await readFile(join(outputs, 'remote-runner', r.runId, 'single', '0', 'runenv.json'), 'utf8')) as {
      env: Record<string, string>;
      params: Record<string, string>;
    };
    expect(dump.params).toMatchObject(values);
    expect(dump.env.TEST_INSTANCE_PARAMS).toContain(`newline=${values.newline}`);
    expect(dump.env.SYNC_SERVICE_HOST).toBe('127.0.0.1');
    expect(dump.env.TEST_OUTPUTS_PATH).toMatch(/^\/tmp\/remote-runner-\w+\/outputs$/);
    expect((await labExec('lab-h3', ['sh', '-c', 'ls /tmp/pwned-* 2>/dev/null | wc -l'])).stdout.trim()).toBe('0');
  });

  it('brings the outputs home and leaves no work dir on the host', async () => {
    const { child, outputs } = await tgRun('inspect', 2, ['lab-h1', 'lab-h2']);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const i of ['0', '1']) {
      const files = await readdir(join(outputs, 'remote-runner', r.runId, 'single', i));
      expect(files).toEqual(expect.arrayContaining(['runenv.json', 'run.out']));
    }
    expect(await workDirs('lab-h1')).toEqual([]);
    expect(await workDirs('lab-h2')).toEqual([]);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('binds the forwarded sync service port to 127.0.0.1 on the host only', async () => {
    const { child, outputs } = await tgRun('stall', 1, ['lab-h1'], ['--grace', '1s']);
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 300 && !seen.includes('stalling'); i++) await sleep(100);
    const listening = (await labExec('lab-h1', ['ss', '-Hltn'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter(Boolean);
    const forwarded = listening.filter((addr) => !addr.endsWith(':22'));
    expect(forwarded.length).toBeGreaterThan(0);
    for (const addr of forwarded) expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const port = forwarded[0]!.split(':')[1]!;
    const probe = await labExec('lab-h2', ['bash', '-c', `exec 3<>/dev/tcp/10.231.0.11/${port}`]);
    expect(probe.exitCode).not.toBe(0);
    expect(probe.stderr).toMatch(/refused/i);
    child.kill('SIGINT');
    readResult(await child, outputs);
  });
});

describe('interrupting the remote runner', { timeout: 120_000 }, () => {
  let sync: SyncService;
  beforeAll(async () => {
    sync = await startSyncService({ port: 0, log: () => {} });
  });
  afterAll(() => sync?.close());

  async function startRunner(host: string, testcase: string) {
    const outputs = await tempDir('runner-out-');
    dirs.push(outputs);
    const run = `int${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    const env = {
      PATH: process.env.PATH!,
      TEST_PLAN: 'remote-runner', TEST_CASE: testcase, TEST_RUN: run, TEST_GROUP_ID: 'single',
      TEST_GROUP_INSTANCE_COUNT: '1', TEST_INSTANCE_COUNT: '1', TEST_SUBNET: '127.1.0.0/16',
      TEST_INSTANCE_PARAMS: `remote-runners=${runners(host)}`, TEST_OUTPUTS_PATH: outputs, TEST_TEMP_PATH: outputs,
      TEST_START_TIME: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(sync.port),
    };
    const child = execa(`${build.runner}/bin/remote-runner`, [], { env, extendEnv: false, reject: false, all: true, timeout: 120_000 });
    let seen = '';
    child.all!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 300 && !seen.includes('stalling'); i++) await sleep(100);
    expect(seen).toContain('stalling');
    return { child, run, outputs };
  }

  it('exits 143 on SIGTERM after stopping the remote app and pulling its outputs', async () => {
    const { child, run, outputs } = await startRunner('lab-h2', 'stall');
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode, result.all).toBe(143);
    expect(await readdir(outputs)).toContain('run.out');
    expect(result.all).toMatch(/lab-h2 \(x86_64-linux\): pull/);
    expect(await workDirs('lab-h2')).toEqual([]);
    expect(await processesWithEnv('TEST_RUN', run)).toEqual([]);
  });

  it('leaves no app process and no work dir on the host within 10 s of a kill -9 of the runner', async () => {
    const { child, run } = await startRunner('lab-h3', 'stall');
    expect(await workDirs('lab-h3')).toHaveLength(1);
    child.kill('SIGKILL');
    await child;
    const deadline = Date.now() + 10_000;
    let left: number[] = [];
    let dirsLeft: string[] = [];
    do {
      await sleep(250);
      left = await processesWithEnv('TEST_RUN', run);
      dirsLeft = await workDirs('lab-h3');
    } while ((left.length > 0 || dirsLeft.length > 0) && Date.now() < deadline);
    expect(left).toEqual([]);
    expect(dirsLeft).toEqual([]);
  });
});
