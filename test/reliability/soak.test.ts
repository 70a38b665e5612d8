// Soak: 64 instances on 4 lab hosts, five runs in a row. Zero failures, and
// afterwards no leftover process, work dir, forward or namespace.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunner, labDown, labExec, labUp } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { workDirs } from '../helpers/runner.ts';
import { readResult, removeAll, startTgRun, tempDir } from '../helpers/tg-run.ts';

const hosts = ['lab-h1', 'lab-h2', 'lab-h3', 'lab-h4'];
const dirs: string[] = [];
let runner: string;

beforeAll(async () => {
  runner = (await buildRunner()).runner;
  await labUp(4);
}, 600_000);
afterAll(async () => {
  await labDown();
  await removeAll(dirs);
});

// Listening TCP sockets on a host other than its sshd: forwards that outlived a run.
async function forwards(host: string): Promise<string[]> {
  const out = (await labExec(host, ['ss', '-Hltn'])).stdout;
  return out.split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter((a) => a && !a.endsWith(':22'));
}

describe('soak', () => {
  it('runs 64 instances on 4 lab hosts five times with zero failures and nothing left behind', { timeout: 900_000 }, async () => {
    const runners = JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })));
    const runIds: string[] = [];
    for (let round = 1; round <= 5; round++) {
      const outputs = await tempDir('soak-');
      dirs.push(outputs);
      const result = await startTgRun(
        ['single', '--plan', '.', '--testcase', 'ok', '--instances', '64', '--use-build', runner, '--outputs-dir', outputs,
          '--test-param', `remote-runners=${runners}`, '--timeout', '150s'],
        { env: { PATH: process.env.PATH! } },
      );
      const r = readResult(result, outputs);
      const failed = r.rows.filter((row) => row.outcome !== 'success');
      expect(failed, `round ${round}: ${r.stderr.split('\n').filter((l) => /error|Error|lost/.test(l)).slice(0, 5).join('\n')}`).toEqual([]);
      expect(r.rows).toHaveLength(64);
      expect(new Set(r.rows.map((row) => row.host))).toEqual(new Set(hosts));
      expect(r.exitCode).toBe(0);
      runIds.push(r.runId);
    }
    // The run's controller keeps its hosts (and their forwards) for 10 s after its last
    // instance, in case more come; then nothing of the runs may be left.
    const deadline = Date.now() + 25_000;
    for (const host of hosts) {
      expect(await workDirs(host), host).toEqual([]);
      while ((await forwards(host)).length > 0 && Date.now() < deadline) await sleep(500);
      expect(await forwards(host), host).toEqual([]);
    }
    for (const id of runIds) expect(await processesWithEnv('TEST_RUN', id)).toEqual([]);
    await labDown();
    expect((await execa('ip', ['netns', 'list'])).stdout.trim()).toBe('');
  });
});
