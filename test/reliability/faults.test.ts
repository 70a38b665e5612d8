// Faults on real lab hosts: a host dies mid-run, the runner or tg-run is stopped,
// the sync service goes away. Each names what was kept and what was cleaned up.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSyncService } from '../../helpers/sync-service/index.ts';
import { buildRunner, labDown, labUp } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { runnerEnv, spawnRunner, waitFor, workDirs } from '../helpers/runner.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let runner: string;
const lab = (...args: string[]) => execa(`${repoRoot}scripts/lab`, args, { timeout: 60_000, stdin: 'ignore' });
const runners = (...hosts: string[]) => JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })));

beforeAll(async () => {
  runner = (await buildRunner()).runner;
  await labUp(4);
}, 600_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

async function tgRun(testcase: string, instances: number, hosts: string[], extra: string[] = []) {
  const outputs = await tempDir('tg-fault-');
  dirs.push(outputs);
  const child = startTgRun(
    ['single', '--plan', '.', '--testcase', testcase, '--instances', String(instances), '--use-build', runner, '--outputs-dir', outputs,
      '--test-param', `remote-runners=${runners(...hosts)}`, ...extra],
    { env: { PATH: process.env.PATH! } },
  );
  return { child, outputs };
}

describe('a lab host that dies mid-run', { timeout: 120_000 }, () => {
  it.each([
    ['its sshd is stopped', 'stop-sshd', 'start-sshd'],
    ['its link is cut', 'cut', 'heal'],
  ])('fails only its own instance within 20 s, naming the host, when %s', async (_what, breakIt, mendIt) => {
    const { child, outputs } = await tgRun('sleep', 3, ['lab-h1', 'lab-h2', 'lab-h3'], ['--test-param', 'sleep_secs=25']);
    let seen = '';
    let failedAt = Infinity;
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      if (failedAt === Infinity && /on lab-h2, .*(connection lost|ended before)/.test(d.toString())) failedAt = Date.now();
    });
    for (let i = 0; i < 600 && (seen.match(/sleeping for 25 s/g) ?? []).length < 3; i++) await sleep(100);
    const broken = Date.now();
    await lab(breakIt, 'lab-h2');
    try {
      const r = readResult(await child, outputs);
      const byHost = Object.fromEntries(r.rows.map((row) => [row.host, row.outcome]));
      expect(byHost).toEqual({ 'lab-h1': 'success', 'lab-h2': 'crash', 'lab-h3': 'success' });
      const failure = r.stderr.split('\n').find((l) => /lab-h2.*(connection lost|ended before the app's exit status)/.test(l));
      expect(failure, r.stderr).toBeDefined();
      expect(failure).toMatch(/instance single #\d on lab-h2, (running the app|pulling the outputs)/);
      expect(r.stdout).toMatch(/lab-h2 .* crash/);
      expect(failedAt - broken).toBeLessThan(20_000);
      for (const row of r.rows.filter((row) => row.host !== 'lab-h2')) {
        const i = row.instance.match(/\[(\d+)\]/)![1]!;
        expect(await readdir(join(outputs, 'remote-runner', r.runId, 'single', String(Number(i))))).toContain('started.txt');
      }
    } finally {
      await lab(mendIt, 'lab-h2');
    }
    // Once back, the host holds nothing of the run: its agent cleaned up on its own.
    for (let i = 0; i < 40 && (await workDirs('lab-h2')).length > 0; i++) await sleep(250);
    expect(await workDirs('lab-h2')).toEqual([]);
  });
});

describe('stopping runs', { timeout: 120_000 }, () => {
  it('Ctrl-C on tg-run stops the remote apps, pulls their outputs, removes the work dirs and exits 130', async () => {
    const { child, outputs } = await tgRun('sleep', 2, ['lab-h1', 'lab-h3'], ['--test-param', 'sleep_secs=60', '--grace', '2s']);
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 600 && (seen.match(/sleeping for 60 s/g) ?? []).length < 2; i++) await sleep(100);
    child.kill('SIGINT');
    const r = readResult(await child, outputs);
    expect(r.exitCode).toBe(130);
    expect(r.rows.map((row) => row.outcome)).toEqual(['cancelled', 'cancelled']);
    for (const i of ['0', '1']) expect(await readdir(join(outputs, 'remote-runner', r.runId, 'single', i))).toContain('started.txt');
    expect(await workDirs('lab-h1')).toEqual([]);
    expect(await workDirs('lab-h3')).toEqual([]);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('fails an instance cleanly, instead of hanging, when the sync service goes away mid-run', async () => {
    const sync = await startSyncService({ port: 0, log: () => {} });
    const outputs = await tempDir('sync-gone-');
    dirs.push(outputs);
    const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'stall', runners: [{ name: 'lab-h4', arch: 'x86_64-linux' }], outputs });
    const child = spawnRunner(runner, env);
    await waitFor(child, 'stalling');
    const gone = Date.now();
    await sync.close();
    const result = await child;
    expect(Date.now() - gone).toBeLessThan(20_000);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/instance single #1 on lab-h4, .*sync service ws:\/\/127\.0\.0\.1:\d+: connection lost during the run; the app was stopped/);
    expect(await workDirs('lab-h4')).toEqual([]);
    expect(await processesWithEnv('TEST_RUN', run)).toEqual([]);
  });
});
