// Failures that used to hang or run without bound, each against real parts: lab
// hosts' sshd and Nix, the real agent, real processes. Every one must end with a
// clear error within its bound, leave nothing running, and write nothing outside
// the outputs directory.
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { buildRunner, labDown, labExec, labUp, type RunnerBuild } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { runnerEnv, spawnRunner, waitFor, workDirs } from '../helpers/runner.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let build: RunnerBuild;
let sync: SyncService;
const lab = (host: string) => ({ name: host, arch: 'x86_64-linux' });

async function outputsDir(): Promise<string> {
  const dir = await tempDir('bounds-out-');
  dirs.push(dir);
  return dir;
}

// The job description of the build, with another agent for this system.
async function jobWithAgent(agent: string): Promise<string> {
  const file = join(await outputsDir(), 'job.json');
  await writeFile(file, JSON.stringify({ version: 2, systems: { 'x86_64-linux': { app: build.job.app, agent: { outPath: agent, entry: 'bin/remote-agent' } } } }));
  return file;
}

// Nothing of the run on this machine, no work dir and no app on the host.
async function nothingLeft(run: string, host: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let left: number[] = [];
  let dirsLeft: string[] = [];
  do {
    left = await processesWithEnv('TEST_RUN', run);
    dirsLeft = await workDirs(host);
    if (left.length === 0 && dirsLeft.length === 0) return;
    await sleep(250);
  } while (Date.now() < deadline);
  expect(left, 'processes of the run').toEqual([]);
  expect(dirsLeft, `work dirs on ${host}`).toEqual([]);
}

beforeAll(async () => {
  build = await buildRunner();
  sync = await startSyncService({ port: 0, log: () => {} });
  await labUp(3);
}, 600_000);
afterAll(async () => {
  await labDown();
  await sync?.close();
});
afterEach(() => removeAll(dirs));

describe('the outputs pull', { timeout: 120_000 }, () => {
  it('ends with a clear error within 30 s when the outputs directory fills up, and the host is left clean', async () => {
    const outputs = await outputsDir();
    const small = join(outputs, 'small');
    await mkdir(small);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    try {
      const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'big-outputs', runners: [lab('lab-h1')], outputs: small, params: { file_bytes: String(4 << 20) } });
      const started = Date.now();
      const result = await spawnRunner(build.runner, env);
      expect(Date.now() - started).toBeLessThan(30_000 + 10_000);
      expect(result.stderr).toMatch(/lab-h1: pulling outputs: outputs: cannot write .*data\.bin: .*(ENOSPC|no space)/i);
      await nothingLeft(run, 'lab-h1');
    } finally {
      await execa('umount', [small], { reject: false });
    }
  });

  it('ends within 30 s when the host sends a corrupt tar and never ends it', async () => {
    // An agent (serve protocol) that says it is ready, reports a clean exit for every
    // instance, sends garbage where the tar should be, and then says nothing more.
    const tree = join(await outputsDir(), 'hostile-agent');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await writeFile(join(tree, 'bin', 'remote-agent'), [
      '#!/usr/bin/node',
      "const frame = (kind, id, body) => { const h = Buffer.alloc(9); h.writeUInt8(kind, 0); h.writeUInt32BE(id, 1); h.writeUInt32BE(body.length, 5); process.stdout.write(Buffer.concat([h, body])); };",
      "frame(3, 0, Buffer.from(JSON.stringify({ type: 'ready', version: 'hostile', pid: process.pid })));",
      "require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {",
      "  const m = JSON.parse(line);",
      "  if (m.op !== 'start') return;",
      "  frame(3, m.id, Buffer.from(JSON.stringify({ type: 'exit', status: 0, code: 0, signal: null })));",
      "  frame(4, m.id, Buffer.alloc(1024, 'x'));",
      '});',
      "process.stdin.on('end', () => process.exit(0));",
      '',
    ].join('\n'));
    await chmod(join(tree, 'bin', 'remote-agent'), 0o755);
    const agent = (await execa('nix-store', ['--add', tree])).stdout.trim();
    const outputs = await outputsDir();
    const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'ok', runners: [lab('lab-h2')], outputs });
    const started = Date.now();
    const result = await spawnRunner(build.runner, env, ['--job', await jobWithAgent(agent)]);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result.stderr).toMatch(/lab-h2: pulling outputs: outputs from lab-h2: /);
    await nothingLeft(run, 'lab-h2');
  });

  it('stops at the byte cap with an error naming it, and writes no more than the cap', async () => {
    const outputs = await outputsDir();
    const { run, env } = runnerEnv({
      syncPort: sync.port, testcase: 'big-outputs', runners: [lab('lab-h1')], outputs,
      params: { file_bytes: String(8 << 20), 'remote-runners-max-outputs-bytes': '1MiB' },
    });
    const result = await spawnRunner(build.runner, env);
    expect(result.stderr).toMatch(/outputs from lab-h1: more than 1048576 bytes \(the limit\) at data\.bin/);
    const written = await readdir(outputs);
    let total = 0;
    for (const name of written) total += (await stat(join(outputs, name))).size;
    expect(total).toBeLessThanOrEqual(1 << 20);
    await nothingLeft(run, 'lab-h1');
  });

  it('keeps a sparse file sparse: 512 MiB that use a few KB on the host use a few KB here', async () => {
    const outputs = await outputsDir();
    const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'big-outputs', runners: [lab('lab-h2')], outputs, params: { sparse_bytes: String(512 << 20) } });
    const result = await spawnRunner(build.runner, env);
    expect(result.exitCode, result.all).toBe(0);
    const file = await stat(join(outputs, 'sparse.bin'));
    expect(file.size).toBe(512 << 20);
    expect(file.blocks * 512).toBeLessThan(1 << 20);
    await nothingLeft(run, 'lab-h2');
  });
});

describe('closure copies', { timeout: 120_000 }, () => {
  it('fails every instance of the host within 30 s when nix-store --import dies mid-copy', async () => {
    // lab-h3 (whose store is still empty) has a nix-store that reads part of the import, then fails.
    await labExec('lab-h3', ['sh', '-c', 'mkdir -p /tmp/real && cp "$(readlink -f "$(command -v nix-store)")" /tmp/real/nix-store']);
    await labExec('lab-h3', ['sh', '-c', `printf '#!/bin/sh\\nif [ "$1" = --import ]; then head -c 200000 >/dev/null; echo "import failed on purpose" >&2; exit 1; fi\\nexec /tmp/real/nix-store "$@"\\n' > /tmp/real/wrapper && chmod +x /tmp/real/wrapper && mount --bind /tmp/real/wrapper "$(command -v nix-store)"`]);
    try {
      const outputs = await outputsDir();
      const started = Date.now();
      const result = await startTgRun(['single', '--plan', '.', '--testcase', 'ok', '--instances', '2', '--use-build', build.runner, '--outputs-dir', outputs, '--test-param', `remote-runners=${JSON.stringify([lab('lab-h3')])}`], { env: { PATH: process.env.PATH! } });
      const r = readResult(result, outputs);
      expect(Date.now() - started).toBeLessThan(30_000 + 10_000);
      expect(r.rows.map((row) => row.outcome)).toEqual(['crash', 'crash']);
      // Both instances fail with the host's placement error, however many share the host.
      expect(r.stderr.match(/ssh lab-h3: nix-store --import exited 1 after \d+ of \d+ bytes: import failed on purpose/g)).toHaveLength(2);
    } finally {
      await labExec('lab-h3', ['sh', '-c', 'umount "$(command -v nix-store)"']);
    }
  });
});

describe('apps that misbehave', { timeout: 120_000 }, () => {
  it('does not wait for a helper that escaped into its own session holding stdout, here or on a host, and kills it', async () => {
    const outputs = await outputsDir();
    const started = Date.now();
    const result = await startTgRun(['single', '--plan', '.', '--testcase', 'escape', '--instances', '2', '--use-build', build.runner, '--outputs-dir', outputs,
      '--test-param', `remote-runners=${JSON.stringify([{ name: 'localhost' }, lab('lab-h2')])}`], { env: { PATH: process.env.PATH! } });
    const r = readResult(result, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.rows.map((row) => row.outcome)).toEqual(['success', 'success']);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
    expect((await labExec('lab-h2', ['sh', '-c', 'pgrep -x sleep || true'])).stdout.trim()).toBe('');
  });

  it('cleans up on the host when the connection drops while the app writes without a pause', async () => {
    const outputs = await outputsDir();
    const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'chatty', runners: [lab('lab-h1')], outputs });
    const child = spawnRunner(build.runner, env);
    await waitFor(child, 'chatty line 1000');
    child.kill('SIGKILL');
    await child;
    await nothingLeft(run, 'lab-h1');
  });

  it('never starts an app whose instance was stopped while its host was being placed', async () => {
    // lab-h2's link is slow, so the placement takes a while; SIGTERM comes meanwhile.
    await execa(`${repoRoot}scripts/lab`, ['shape', 'lab-h2', '--rate', '8mbit'], { timeout: 60_000 });
    try {
      await labExec('lab-h2', ['sh', '-c', 'nix-store --delete $(nix-store -qR /nix/store/*-plan-* 2>/dev/null) >/dev/null 2>&1 || true']);
      const outputs = await outputsDir();
      const { run, env } = runnerEnv({ syncPort: sync.port, testcase: 'sleep', runners: [lab('lab-h2')], outputs });
      const child = spawnRunner(build.runner, env);
      await waitFor(child, 'chosen');
      await sleep(1_000);
      const stoppedAt = Date.now();
      child.kill('SIGTERM');
      const result = await child;
      expect(result.exitCode, result.all).toBe(143);
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
      expect(await readdir(outputs)).not.toContain('started.txt');
      await nothingLeft(run, 'lab-h2');
    } finally {
      await execa(`${repoRoot}scripts/lab`, ['unshape', 'lab-h2'], { timeout: 60_000, reject: false });
    }
  });
});

describe('values that are not UTF-8', { timeout: 60_000 }, () => {
  it('are refused by tg-run with one line naming the argument', async () => {
    const result = await execa('bash', ['-c', 'exec node bin/tg-run.js single --plan . --testcase ok --test-param "k=$(printf "a\\xffb")"'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim()).toBe('tg-run: argument "k=a…" holds bytes that are not UTF-8 (byte 3); params reach the app as UTF-8 text only');
  });

  it('are refused by the runner with one line naming the variable, before anything runs', async () => {
    const outputs = await outputsDir();
    const { env } = runnerEnv({ syncPort: sync.port, testcase: 'ok', runners: [lab('lab-h1')], outputs });
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
    const result = await execa('bash', ['-c', `exec env -i ${assignments} TEST_TAG="$(printf 'v\\xfe')" ${build.runner}/bin/remote-runner`], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim()).toBe('remote-runner: environment variable TEST_TAG holds bytes that are not UTF-8 (byte 1 of its value); values reach the app as UTF-8 text only');
  });
});
