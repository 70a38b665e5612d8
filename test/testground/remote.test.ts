// Released Testground (the real daemon v0.6.0, exec:go and local:exec only) runs
// examples/go-plan, whose main calls place.Elsewhere(): each instance hands
// itself to remote-runner on the daemon's PATH and runs on the lab host that
// remote-runners names; `testground collect` brings its outputs.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goProxyEnv } from '../helpers/go-proxy.ts';
import { labDown, labUp } from '../helpers/lab.ts';
import { testground, testgroundDown, testgroundUp } from '../helpers/testground.ts';
import { repoRoot } from '../helpers/tg-run.ts';

const text = (out: unknown): string => stripVTControlCharacters(String(out));
const lab = (host: string) => ({ name: host, arch: 'x86_64-linux' });
let work: string;

// Run the placement case with `runners` and collect its outputs; resolves with each instance's host.
async function placed(instances: number, runners: unknown[]): Promise<{ out: string; hosts: string[] }> {
  const run = await testground(
    ['run', 'single', '--plan', 'go-plan', '--testcase', 'placement', '--builder', 'exec:go', '--runner', 'local:exec', '--instances', String(instances),
      '--test-param', `remote-runners=${JSON.stringify(runners)}`, '--wait'],
    { timeout: 420_000 },
  );
  const out = text(run.all);
  expect(run.exitCode, out).toBe(0);
  const runId = /finished run with ID: (\w+)/.exec(out)?.[1];
  expect(runId, out).toBeDefined();
  const archive = join(work, `${runId}.tgz`);
  const collected = await testground(['collect', '--runner', 'local:exec', '--output', archive, runId!]);
  expect(collected.exitCode, text(collected.all)).toBe(0);
  const unpacked = join(work, runId!);
  await execa('mkdir', ['-p', unpacked]);
  await execa('tar', ['-xzf', archive, '-C', unpacked]);
  const hosts = await Promise.all(
    Array.from({ length: instances }, async (_, i) => (JSON.parse(await readFile(join(unpacked, runId!, 'single', String(i), 'host.json'), 'utf8')) as { hostname: string }).hostname),
  );
  return { out, hosts };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'testground-remote-'));
  // The package as `npm install -g` would put it on the daemon's PATH: remote-runner and its controller.
  await execa('npm', ['run', 'build'], { cwd: repoRoot, timeout: 300_000 });
  await testgroundUp({ env: { PATH: `${repoRoot}dist/bin:${process.env.PATH!}`, ...(await goProxyEnv()) } });
  await labUp(2);
  const imported = await testground(['plan', 'import', '--from', join(repoRoot, 'examples', 'go-plan'), '--name', 'go-plan']);
  expect(imported.exitCode, text(imported.all)).toBe(0);
}, 1_200_000);

afterAll(async () => {
  await labDown();
  await testgroundDown();
  await rm(work, { recursive: true, force: true });
});

describe('examples/go-plan under Testground’s daemon', { timeout: 600_000 }, () => {
  it('places 4 instances on lab-h1 and lab-h2, and testground collect returns their outputs', async () => {
    const { out, hosts } = await placed(4, [lab('lab-h1'), lab('lab-h2')]);
    expect(hosts.sort()).toEqual(['lab-h1', 'lab-h1', 'lab-h2', 'lab-h2']);
    expect(out).toMatch(/instance \d of 4 on lab-h1/);
    expect(out).toMatch(/instance \d of 4 on lab-h2/);
  });

  it('runs one instance on localhost and the others on lab hosts', async () => {
    const { hosts } = await placed(3, [{ name: 'localhost' }, lab('lab-h1'), lab('lab-h2')]);
    expect(hosts.sort()).toEqual([hostname(), 'lab-h1', 'lab-h2'].sort());
  });
});
