// Remote builds on lab hosts: the derivation travels, the output stays there.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { buildRunner, labDown, labExec, labUp, type RunnerBuild } from '../helpers/lab.ts';
import { repoRoot } from '../helpers/tg-run.ts';

let build: RunnerBuild;
let sync: SyncService;
let work: string;

// Run a nix command with the repository's shared Nix configuration.
function nix(args: string[]) {
  return execa('bash', ['-c', '. scripts/lib/nix-env.sh && exec "$@"', 'nix-env', ...args], { cwd: repoRoot, timeout: 300_000, stdin: 'ignore' });
}

// A job description whose app for each system is `apps[system]`, with the built agent.
async function jobWith(apps: Record<string, { drvPath: string; outPath: string }>): Promise<string> {
  const file = join(work, `job-${Object.keys(apps).join('-')}-${Date.now()}.json`);
  const systems = Object.fromEntries(Object.entries(apps).map(([system, app]) => [system, { app: { ...app, entry: 'bin/plan' }, agent: build.job.agent }]));
  await writeFile(file, JSON.stringify({ version: 2, systems }));
  return file;
}

function runner(jobFile: string, runners: unknown[], testcase = 'ok') {
  const run = `rb${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const env = {
    PATH: process.env.PATH!,
    TEST_PLAN: 'remote-runner', TEST_CASE: testcase, TEST_RUN: run, TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: '1', TEST_INSTANCE_COUNT: '1', TEST_SUBNET: '127.1.0.0/16',
    TEST_INSTANCE_PARAMS: `remote-runners=${JSON.stringify(runners)}`, TEST_OUTPUTS_PATH: work, TEST_TEMP_PATH: work,
    SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(sync.port),
  };
  return execa(`${build.runner}/bin/remote-runner`, ['--job', jobFile], { env, extendEnv: false, reject: false, all: true, timeout: 240_000 });
}

beforeAll(async () => {
  build = await buildRunner();
  work = await mkdtemp(join(tmpdir(), 'remote-build-'));
  sync = await startSyncService({ port: 0, log: () => {} });
  await labUp(2);
}, 600_000);
afterAll(async () => {
  await labDown();
  await sync?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('remote builds', { timeout: 300_000 }, () => {
  it('builds the app on lab-h1 when its entry says "build": "remote", and the output never comes back', async () => {
    // A variant of the plan whose output this machine has never built.
    const clone = join(work, 'variant');
    await execa('git', ['clone', '-q', repoRoot, clone]);
    await writeFile(join(clone, 'plans', 'variant.txt'), `variant ${Date.now()}\n`);
    await execa('git', ['add', 'plans/variant.txt'], { cwd: clone });
    const offline = (await execa(`${repoRoot}scripts/nix-build`, ['--offline-args'], { cwd: repoRoot })).stdout.split(/\s+/).filter(Boolean);
    const evalAttr = async (attr: string) => (await nix(['nix', 'eval', '--raw', `${clone}#packages.x86_64-linux.plan.${attr}`, ...offline])).stdout.trim();
    const drvPath = await evalAttr('drvPath');
    const outPath = await evalAttr('outPath');
    expect((await execa('nix-store', ['--check-validity', outPath], { reject: false })).exitCode).not.toBe(0);

    const result = await runner(await jobWith({ 'x86_64-linux': { drvPath, outPath } }), [{ name: 'lab-h1', arch: 'x86_64-linux', build: 'remote' }]);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toMatch(new RegExp(`lab-h1 \\(x86_64-linux\\): build, .*built ${outPath}`));
    expect((await labExec('lab-h1', ['nix-store', '--check-validity', outPath])).exitCode).toBe(0);
    expect((await execa('nix-store', ['--check-validity', outPath], { reject: false })).exitCode).not.toBe(0);
  });

  it('gives the tail of the remote log when the build fails there', async () => {
    const expr = 'derivation { name = "fails-on-purpose"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo boom-from-the-builder >&2; exit 3" ]; }';
    const drvPath = (await nix(['nix-instantiate', '--expr', expr])).stdout.trim();
    const outPath = (await nix(['nix-store', '--query', '--outputs', drvPath])).stdout.trim();
    const result = await runner(await jobWith({ 'x86_64-linux': { drvPath, outPath } }), [{ name: 'lab-h2', arch: 'x86_64-linux', build: 'remote' }]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/ssh lab-h2: nix-store --realise .*fails-on-purpose.*boom-from-the-builder/);
  });

  it('says which systems it has when there is no derivation for a host\'s system', async () => {
    const result = await runner(await jobWith({ 'x86_64-linux': { drvPath: '/nix/store/00000000000000000000000000000000-x.drv', outPath: '/nix/store/00000000000000000000000000000000-x' } }), [
      { name: 'lab-h1', arch: 'aarch64-darwin' },
    ]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/has no app for aarch64-darwin \(it has: x86_64-linux\)/);
  });

  it('says so, naming the host, when the host has no Nix', async () => {
    await labExec('lab-h2', ['mount', '--bind', '/dev/null', '/usr/bin/nix-store']);
    try {
      const result = await runner(`${build.runner}/share/remote-runner/job.json`, [{ name: 'lab-h2', arch: 'x86_64-linux' }]);
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toMatch(/ssh lab-h2: the host has no Nix/);
    } finally {
      await labExec('lab-h2', ['umount', '/usr/bin/nix-store']);
    }
  });
});
