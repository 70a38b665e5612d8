// Released Testground (the real daemon v0.6.0, exec:go and local:exec only) runs
// examples/go-plan, whose main calls place.Elsewhere(): each instance hands
// itself to remote-runner on the daemon's PATH and runs on the lab host that
// remote-runners names; `testground collect` brings its outputs. The README's
// "Using it with Testground" commands run as written (the package from its
// tarball into a prefix of its own, the daemon started with that PATH).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goProxyEnv } from '../helpers/go-proxy.ts';
import { labDown, labUp } from '../helpers/lab.ts';
import { testground, testgroundDown, testgroundEnv, testgroundUp } from '../helpers/testground.ts';
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

// The commands of the README's "Using it with Testground", one per line.
async function readmeCommands(): Promise<string[]> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((part) => part.startsWith('Using it with Testground\n'))!;
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block.replace(/\\\n\s*/g, '').split('\n').filter(Boolean);
}

// Run one README command in bash, with the testground client on the PATH.
async function shell(command: string, cwd: string) {
  const tg = await testgroundEnv();
  const result = await execa('bash', ['-c', command], {
    cwd,
    env: { PATH: `${dirname(tg.TESTGROUND_BIN)}:${process.env.PATH!}`, TESTGROUND_HOME: tg.TESTGROUND_HOME, DOCKER_HOST: tg.DOCKER_HOST },
    reject: false,
    all: true,
    timeout: 420_000,
  });
  expect(result.exitCode, `${command}\n${text(result.all)}`).toBe(0);
  return text(result.all);
}

let commands: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'testground-remote-'));
  commands = await readmeCommands();
  expect(commands[0]).toBe('npm install -g @remote-runner/plan');
  // `npm install -g` from the package's tarball, into a prefix of the test's own.
  const packed = await execa('npm', ['pack', '--json', '--pack-destination', work], { cwd: repoRoot, timeout: 300_000 });
  const tarball = join(work, (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string }>)[0]!.filename);
  const prefix = join(work, 'global');
  await execa('bash', ['-c', commands[0]!.replace('@remote-runner/plan', `--prefix ${prefix} --no-audit --no-fund ${tarball}`)], { timeout: 300_000 });
  await testgroundUp({ env: { PATH: `${prefix}/bin:${process.env.PATH!}`, ...(await goProxyEnv()) } });
  await labUp(2);
}, 1_200_000);

afterAll(async () => {
  await labDown();
  await testgroundDown();
  await rm(work, { recursive: true, force: true });
});

describe('examples/go-plan under Testground’s daemon', { timeout: 600_000 }, () => {
  it('follows the README: imports the plan, places 4 instances on lab-h1 and lab-h2, and collects their outputs', async () => {
    const [, importPlan, runPlan, collect] = commands;
    await shell(importPlan!, join(repoRoot, 'examples'));
    const out = await shell(runPlan!, join(repoRoot, 'examples'));
    expect(out).toMatch(/instance \d of 4 on lab-h1/);
    expect(out).toMatch(/instance \d of 4 on lab-h2/);
    const runId = /finished run with ID: (\w+)/.exec(out)?.[1];
    expect(runId, out).toBeDefined();
    // As written, it leaves <run id>.tgz in the working directory.
    await shell(collect!.replace('<run id>', runId!), work);
    const unpacked = join(work, runId!);
    await execa('mkdir', ['-p', unpacked]);
    await execa('tar', ['-xzf', join(work, `${runId}.tgz`), '-C', unpacked]);
    const hosts = await Promise.all([0, 1, 2, 3].map(async (i) => (JSON.parse(await readFile(join(unpacked, runId!, 'single', String(i), 'host.json'), 'utf8')) as { hostname: string }).hostname));
    expect(hosts.sort()).toEqual(['lab-h1', 'lab-h1', 'lab-h2', 'lab-h2']);
  });

  it('runs one instance on localhost and the others on lab hosts', async () => {
    const { hosts } = await placed(3, [{ name: 'localhost' }, lab('lab-h1'), lab('lab-h2')]);
    expect(hosts.sort()).toEqual([hostname(), 'lab-h1', 'lab-h2'].sort());
  });
});
