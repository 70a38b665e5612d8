// One connection and one agent per host, shared by every instance there: one
// instance's crash does not touch its neighbours, and the loss of the run's
// controller ends every instance at once and leaves nothing on any host.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRunner, labDown, labUp, type RunnerBuild } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { workDirs } from '../helpers/runner.ts';
import { readResult, removeAll, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let build: RunnerBuild;
const lab = (...hosts: string[]) => `remote-runners=${JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })))}`;

async function outputsDir(): Promise<string> {
  const dir = await tempDir('shared-out-');
  dirs.push(dir);
  return dir;
}

// Nothing of the run here, and no work dir on the hosts, within 10 s.
async function nothingLeft(run: string, hosts: string[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = await processesWithEnv('TEST_RUN', run);
    const dirsLeft = (await Promise.all(hosts.map(workDirs))).flat();
    if ((left.length === 0 && dirsLeft.length === 0) || Date.now() > deadline) {
      expect(left, 'processes of the run').toEqual([]);
      expect(dirsLeft, 'work dirs on the hosts').toEqual([]);
      return;
    }
    await sleep(250);
  }
}

// The pid of the run's controller, found by the socket it serves.
async function controllerOf(run: string): Promise<number | undefined> {
  const socket = `${createHash('sha256').update(run).digest('hex').slice(0, 20)}.sock`;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('remote-runner-controller') && cmdline.includes(socket)) return Number(name);
  }
  return undefined;
}

beforeAll(async () => {
  build = await buildRunner();
  await labUp(2);
}, 600_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('instances that share a host', { timeout: 180_000 }, () => {
  it.each([
    ['the per-instance processes and the run’s controller', (outputs: string) => ['--use-build', build.runner, '--outputs-dir', outputs]],
    ['tg-run as the runner', (outputs: string) => ['--builder', 'exec:ts', '--outputs-dir', outputs]],
  ])('lets the other three finish when one instance of four on a host crashes (%s)', async (_how, args) => {
    const outputs = await outputsDir();
    const result = await startTgRun(['single', '--plan', '.', '--testcase', 'one-crashes', '--instances', '4', ...args(outputs), '--test-param', lab('lab-h1')], { env: { PATH: process.env.PATH! } });
    const r = readResult(result, outputs);
    expect(r.exitCode).toBe(1);
    expect(r.rows.map((row) => row.host)).toEqual(Array(4).fill('lab-h1'));
    expect(r.rows.map((row) => row.outcome).sort()).toEqual(['crash', 'success', 'success', 'success']);
    const done = await Promise.all([0, 1, 2, 3].map((i) => readdir(join(outputs, 'remote-runner', r.runId, 'single', String(i))).then((f) => f.includes('done.txt'))));
    expect(done.filter(Boolean)).toHaveLength(3);
    await nothingLeft(r.runId, ['lab-h1']);
  });

  it('ends every instance at once, and leaves nothing on any host, when the run’s controller is killed mid-run', async () => {
    const outputs = await outputsDir();
    const child = startTgRun(['single', '--plan', '.', '--testcase', 'stall', '--instances', '4', '--use-build', build.runner, '--outputs-dir', outputs, '--test-param', lab('lab-h1', 'lab-h2')], { env: { PATH: process.env.PATH! } });
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 600 && (seen.match(/stalling/g) ?? []).length < 4; i++) await sleep(100);
    const [runId] = await readdir(join(outputs, 'remote-runner'));
    const pid = await controllerOf(runId!);
    expect(pid, 'the run’s controller').toBeDefined();
    const killedAt = Date.now();
    process.kill(pid!, 'SIGKILL');
    const r = readResult(await child, outputs);
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    expect(r.rows.map((row) => row.outcome)).toEqual(['crash', 'crash', 'crash', 'crash']);
    expect(r.stderr.match(/the run's controller went away/g)).toHaveLength(4);
    await nothingLeft(runId!, ['lab-h1', 'lab-h2']);
  });
});
