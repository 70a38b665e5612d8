// examples/ts-plan, an @testground/sdk plan with no launcher file, run by tg-run
// with exec:ts in place and on a lab host (one bundle plus node).
import { readFile, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { labDown, labUp } from '../helpers/lab.ts';
import { nixEnv, offlineNixpkgs } from '../helpers/nix.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
const planDir = join(repoRoot, 'examples', 'ts-plan');

async function tgRun(args: string[], options: { plan?: string; builder?: string; env?: Record<string, string> } = {}) {
  const outputs = await tempDir('ts-plan-out-');
  dirs.push(outputs);
  const result = await startTgRun(['single', '--plan', options.plan ?? planDir, '--testcase', 'placement', '--builder', options.builder ?? 'exec:ts', '--outputs-dir', outputs, ...args], {
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...options.env },
  });
  return readResult(result, outputs);
}

async function hostnames(outputsDir: string, runId: string): Promise<string[]> {
  const group = join(outputsDir, 'ts-plan', runId, 'single');
  const indexes = (await readdir(group)).sort((a, b) => Number(a) - Number(b));
  return Promise.all(indexes.map(async (i) => (JSON.parse(await readFile(join(group, i, 'host.json'), 'utf8')) as { hostname: string }).hostname));
}

beforeAll(() => labUp(1), 300_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('examples/ts-plan with exec:ts', { timeout: 240_000 }, () => {
  it('has no launcher file: only its TypeScript, its manifest and its package.json', async () => {
    expect((await readdir(planDir)).filter((f) => /\.(c|m)?js$/.test(f))).toEqual([]);
  });

  it('runs 3 instances in place', async () => {
    const r = await tgRun(['--instances', '3']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.rows.map((row) => [row.host, row.outcome])).toEqual(Array(3).fill(['localhost', 'success']));
    expect(new Set(await hostnames(r.outputsDir, r.runId)).size).toBe(1);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('runs on a lab host and in place in one run, as one bundle plus node', async () => {
    const r = await tgRun(['--instances', '2', '--test-param', 'remote-runners=[{"name":"localhost"},{"name":"lab-h1","arch":"x86_64-linux"}]']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.rows.map((row) => row.outcome)).toEqual(['success', 'success']);
    expect(await hostnames(r.outputsDir, r.runId)).toEqual(r.rows.map((row) => (row.host === 'localhost' ? hostname() : row.host)));
    expect(r.rows.map((row) => row.host).sort()).toEqual(['lab-h1', 'localhost']);
    // The bundle, node and the agent: three paths to a cold host.
    expect(r.stderr).toMatch(/lab-h1 \(x86_64-linux\): copy, 3 paths, [\d.]+ MB, .* of 3 in the closure/);
  });

  it('runs through its own flake (nix flake init -t …#ts-plan) with nix:generic, offline, here and on a lab host', async () => {
    const dir = await tempDir('ts-plan-flake-');
    dirs.push(dir);
    const env = await nixEnv({ features: false, dir });
    await execa('nix', ['--extra-experimental-features', 'nix-command flakes', 'flake', 'init', '-t', `${repoRoot}#ts-plan`], { cwd: dir, env });
    const nixArgs = `--override-input remote-runner ${repoRoot} --override-input nixpkgs path:${await offlineNixpkgs()} --no-write-lock-file`;
    const r = await tgRun(['--instances', '2', `--nix-args=${nixArgs}`, '--test-param', 'remote-runners=[{"name":"localhost"},{"name":"lab-h1","arch":"x86_64-linux"}]'], { plan: dir, builder: 'nix:generic', env });
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(await hostnames(r.outputsDir, r.runId)).toEqual(r.rows.map((row) => (row.host === 'localhost' ? hostname() : row.host)));
  });
});
