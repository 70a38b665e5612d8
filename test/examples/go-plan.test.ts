// examples/go-plan, an sdk-go v0.3.0 plan, run by tg-run on lab hosts: built with
// exec:go as Testground builds it, and through its own flake with nix:generic.
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { goProxyEnv } from '../helpers/go-proxy.ts';
import { labDown, labExec, labUp } from '../helpers/lab.ts';
import { nixEnv, offlineNixpkgs } from '../helpers/nix.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
const lab = (...hosts: string[]) => `remote-runners=${JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })))}`;

// A copy of examples/go-plan in a temp dir, as a user would have it.
async function planCopy(): Promise<string> {
  const dir = await tempDir('go-plan-');
  dirs.push(dir);
  await cp(join(repoRoot, 'examples', 'go-plan'), dir, { recursive: true });
  return dir;
}

async function tgRun(planDir: string, args: string[], env: Record<string, string> = {}) {
  const outputs = await tempDir('go-plan-out-');
  dirs.push(outputs);
  const result = await startTgRun(['single', '--plan', planDir, '--outputs-dir', outputs, ...args], { env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...(await goProxyEnv()), ...env } });
  return readResult(result, outputs);
}

// Each instance's host.json, by instance index.
async function hostsOf(outputsDir: string, runId: string): Promise<Array<{ seq: number; hostname: string }>> {
  const group = join(outputsDir, 'go-plan', runId, 'single');
  const indexes = (await readdir(group)).sort((a, b) => Number(a) - Number(b));
  return Promise.all(indexes.map(async (i) => JSON.parse(await readFile(join(group, i, 'host.json'), 'utf8')) as { seq: number; hostname: string }));
}

// The copy line a host's first instance printed: paths and MB sent.
function copied(stderr: string, host: string): { paths: number; mb: number } {
  const line = stderr.split('\n').find((l) => new RegExp(`${host} \\(x86_64-linux\\): copy, \\d+ paths, [\\d.]+ MB, .* in the closure`).test(l));
  const match = /copy, (\d+) paths, ([\d.]+) MB/.exec(line ?? '');
  if (!match) throw new Error(`no copy line for ${host} in:\n${stderr}`);
  return { paths: Number(match[1]), mb: Number(match[2]) };
}

beforeAll(() => labUp(2), 300_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('examples/go-plan on lab hosts', { timeout: 300_000 }, () => {
  it('runs 4 instances on 2 lab hosts with exec:go, and each instance’s outputs name the host it ran on', async () => {
    const r = await tgRun(join(repoRoot, 'examples', 'go-plan'), ['--testcase', 'placement', '--instances', '4', '--builder', 'exec:go', '--test-param', lab('lab-h1', 'lab-h2')]);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.rows.map((row) => row.outcome)).toEqual(['success', 'success', 'success', 'success']);
    const hosts = await hostsOf(r.outputsDir, r.runId);
    expect(hosts.map((h) => h.hostname)).toEqual(r.rows.map((row) => row.host));
    expect(new Set(hosts.map((h) => h.hostname))).toEqual(new Set(['lab-h1', 'lab-h2']));
    expect(hosts.map((h) => h.seq).sort()).toEqual([1, 2, 3, 4]);
    const peers = JSON.parse(await readFile(join(r.outputsDir, 'go-plan', r.runId, 'single', '0', 'peers.json'), 'utf8')) as unknown[];
    expect(peers).toHaveLength(4);
    expect(r.stdout).toMatch(/MESSAGE << single\[00\d\] >> instance \d of 4 on lab-h[12]/);
    // A cold host gets the static binary and the agent: two paths, nothing else.
    for (const host of ['lab-h1', 'lab-h2']) {
      const sent = copied(r.stderr, host);
      expect(sent.paths).toBe(2);
      expect(sent.mb).toBeLessThan(30);
      process.stderr.write(`go-plan to a cold ${host}: ${sent.paths} paths, ${sent.mb} MB\n`);
    }
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('runs a composition that points at the plan directory, each group with its own params', async () => {
    const dir = await tempDir('go-plan-comp-');
    dirs.push(dir);
    const file = join(dir, 'composition.toml');
    await writeFile(file, [
      '[metadata]', 'name = "two-groups"', '',
      '[global]', 'plan = "go-plan"', 'case = "placement"', 'builder = "exec:go"', 'runner = "local:exec"', 'total_instances = 3', '',
      '[[groups]]', 'id = "near"', '[groups.instances]', 'count = 1', '',
      '[[groups]]', 'id = "far"', '[groups.instances]', 'count = 2',
      '[groups.run.test_params]', `remote-runners = '${JSON.stringify([{ name: 'lab-h2', arch: 'x86_64-linux' }])}'`, '',
    ].join('\n'));
    const outputs = await tempDir('go-plan-out-');
    dirs.push(outputs);
    const result = await startTgRun(['composition', '-f', file, '--plan', join(repoRoot, 'examples', 'go-plan'), '--outputs-dir', outputs], { env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...(await goProxyEnv()) } });
    const r = readResult(result, outputs);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.rows.map((row) => [row.group, row.host, row.outcome])).toEqual([
      ['near', 'localhost', 'success'],
      ['far', 'lab-h2', 'success'],
      ['far', 'lab-h2', 'success'],
    ]);
    const far = JSON.parse(await readFile(join(outputs, 'go-plan', r.runId, 'far', '1', 'host.json'), 'utf8')) as { hostname: string; group: string };
    expect(far).toMatchObject({ hostname: 'lab-h2', group: 'far' });
  });

  it('sends a warm host only the new binary when the plan changes', async () => {
    const dir = await planCopy();
    await writeFile(join(dir, 'changed.go'), `package main\n\nconst changedAt = "${Date.now()}"\n\nvar _ = changedAt\n`);
    const r = await tgRun(dir, ['--testcase', 'placement', '--instances', '1', '--builder', 'exec:go', '--test-param', lab('lab-h1')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const sent = copied(r.stderr, 'lab-h1');
    expect(sent.paths).toBe(1);
    process.stderr.write(`go-plan to a warm lab-h1 after a change: ${sent.paths} path, ${sent.mb} MB\n`);
  });

  it('cross-builds the plan and the agent with GOOS and GOARCH for a host of another system', async () => {
    // lab-h1 is said to be aarch64-linux: both binaries are built for arm64 and copied there,
    // and running them on an x86_64 host fails, saying why.
    const r = await tgRun(join(repoRoot, 'examples', 'go-plan'), ['--testcase', 'placement', '--instances', '1', '--builder', 'exec:go', '--test-param', 'remote-runners=[{"name":"lab-h1","arch":"aarch64-linux"}]']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/lab-h1 \(aarch64-linux\): copy, 2 paths/);
    expect(r.stderr).toMatch(/exec format error/i);
    const machines = await labExec('lab-h1', ['sh', '-c', 'for f in /nix/store/*-go-plan-aarch64-linux/bin/go-plan /nix/store/*-remote-agent-*-aarch64-linux/bin/remote-agent; do od -An -tx1 -j18 -N2 "$f"; done']);
    // ELF e_machine 0xb7: AArch64.
    expect(machines.stdout.trim().split('\n').map((l) => l.trim())).toEqual(['b7 00', 'b7 00']);
  });

  it('runs the plan through its own flake with nix:generic, offline, with Nix features tg-run turns on itself', async () => {
    const dir = await tempDir('go-plan-flake-');
    dirs.push(dir);
    const env = await nixEnv({ features: false, dir });
    await execa('nix', ['--extra-experimental-features', 'nix-command flakes', 'flake', 'init', '-t', `${repoRoot}#go-plan`], { cwd: dir, env });
    expect((await readdir(dir)).sort()).toEqual(expect.arrayContaining(['flake.nix', 'go.mod', 'main.go', 'manifest.toml']));
    await execa('go', ['mod', 'vendor'], { cwd: dir, env: await goProxyEnv() });
    const nixArgs = `--override-input remote-runner ${repoRoot} --override-input nixpkgs path:${await offlineNixpkgs()} --no-write-lock-file`;
    const r = await tgRun(dir, ['--testcase', 'placement', '--instances', '2', '--builder', 'nix:generic', `--nix-args=${nixArgs}`, '--test-param', lab('lab-h1', 'lab-h2')], env);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).not.toMatch(/placing instances on their hosts through the remote runner/);
    const hosts = await hostsOf(r.outputsDir, r.runId);
    expect(new Set(hosts.map((h) => h.hostname))).toEqual(new Set(['lab-h1', 'lab-h2']));
    expect((await labExec('lab-h1', ['sh', '-c', 'ls /nix/store | grep -c -- -go-plan-0.1.0$'])).stdout.trim()).toBe('1');
  });

  it('says how to build offline when the flake’s nixpkgs cannot be fetched', async () => {
    const dir = await planCopy();
    const env = await nixEnv({ features: false, dir });
    const r = await tgRun(dir, ['--testcase', 'placement', '--builder', 'nix:generic', '--nix-args=--no-write-lock-file'], env);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).not.toMatch(/experimental Nix feature .* is disabled/);
    expect(r.stderr).toMatch(/this machine seems to be offline. To build offline, point the input at a local copy/);
    expect(r.stderr).toMatch(/--nix-args='--override-input nixpkgs path:/);
  });
});
