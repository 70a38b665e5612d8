// Bad input, injection, hostile outputs and exposure, against real lab hosts.
// Every bad input gives one clear line, a non-zero exit, and leaves nothing on any host.
import { lstat, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { buildRunner, labDown, labExec, labUp } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { runnerEnv, spawnRunner, workDirs } from '../helpers/runner.ts';
import { removeAll, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
const extraConfig = '/etc/ssh/ssh_config.d/zz-remote-runner-tests.conf';
const labState = '/var/lib/remote-runner-lab';
let runner: string;
let sync: SyncService;
let work: string;

beforeAll(async () => {
  runner = (await buildRunner()).runner;
  sync = await startSyncService({ port: 0, log: () => {} });
  await labUp(3);
  work = await tempDir('hostile-');
  // An alias whose key the host refuses, and one whose pinned host key is wrong.
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'stranger')]);
  const pinned = await readFile(join(labState, 'known_hosts'), 'utf8');
  const h2key = pinned.split('\n').find((l) => l.startsWith('10.231.0.12'))!.split(' ').slice(1).join(' ');
  await writeFile(join(work, 'wrong_known_hosts'), `10.231.0.11 ${h2key}\n`);
  await writeFile(
    extraConfig,
    [
      'Host lab-refused-key',
      '  HostName 10.231.0.11',
      '  User root',
      `  IdentityFile ${join(work, 'stranger')}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${labState}/known_hosts`,
      'Host lab-changed-key',
      '  HostName 10.231.0.11',
      '  User root',
      `  IdentityFile ${labState}/id_ed25519`,
      `  UserKnownHostsFile ${join(work, 'wrong_known_hosts')}`,
      'Host lab-nowhere',
      '  HostName 10.231.0.99',
      '  ConnectTimeout 3',
      '',
    ].join('\n'),
  );
}, 600_000);
afterAll(async () => {
  await rm(extraConfig, { force: true });
  await labDown();
  await sync?.close();
  if (work) await rm(work, { recursive: true, force: true });
});
afterEach(() => removeAll(dirs));

async function run(testcase: string, runners: unknown[], params: Record<string, string> = {}, extra: Record<string, string> = {}) {
  const outputs = await tempDir('hostile-out-');
  dirs.push(outputs);
  const { run: id, env } = runnerEnv({ syncPort: sync.port, testcase, runners, outputs, params, extra });
  const result = await spawnRunner(runner, env);
  return { result, outputs, id };
}

async function nothingLeft(id: string) {
  for (const host of ['lab-h1', 'lab-h2', 'lab-h3']) expect(await workDirs(host)).toEqual([]);
  expect(await processesWithEnv('TEST_RUN', id)).toEqual([]);
}

const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? '';

describe('bad input', { timeout: 120_000 }, () => {
  it.each([
    ['an unreachable host', [{ name: 'lab-nowhere', arch: 'x86_64-linux' }], /on lab-nowhere, connecting over SSH: ssh lab-nowhere \(10\.231\.0\.99:22\): (timed out|.*unreachable)/],
    ['a refused key', [{ name: 'lab-refused-key', arch: 'x86_64-linux' }], /on lab-refused-key, connecting over SSH: ssh lab-refused-key \(10\.231\.0\.11:22\): no key was accepted/],
    ['a changed host key', [{ name: 'lab-changed-key', arch: 'x86_64-linux' }], /on lab-changed-key, connecting over SSH: .*host key .*CHANGED/],
    ['an unknown arch', [{ name: 'lab-h1', arch: 'sparc64-linux' }], /param remote-runners\[0\]\.arch: expected one of x86_64-linux, aarch64-linux, x86_64-darwin, aarch64-darwin \(got "sparc64-linux"\)/],
    ['a host alias holding shell metacharacters', [{ name: 'lab-h1;touch /tmp/pwned-alias', arch: 'x86_64-linux' }], /param remote-runners\[0\]\.name: expected an ssh host alias/],
    ['an entry with an unknown field', [{ name: 'lab-h1', arch: 'x86_64-linux', port: 22 }], /param remote-runners\[0\]: .*port/],
  ])('refuses %s with one line and a non-zero exit', async (_what, runners, message) => {
    const { result, id } = await run('ok', runners);
    expect(result.exitCode).not.toBe(0);
    expect(lastLine(result.stderr)).toMatch(message);
    await expect(lstat('/tmp/pwned-alias')).rejects.toThrow();
    await nothingLeft(id);
  });

  it('refuses malformed remote-runners JSON with one line naming the param', async () => {
    const outputs = await tempDir('hostile-out-');
    dirs.push(outputs);
    const { run: id, env } = runnerEnv({ syncPort: sync.port, testcase: 'ok', runners: [], outputs });
    env.TEST_INSTANCE_PARAMS = 'remote-runners=[{"name": "lab-h1", ';
    const result = await spawnRunner(runner, env);
    expect(result.exitCode).not.toBe(0);
    expect(lastLine(result.stderr)).toMatch(/param remote-runners: invalid JSON/);
    await nothingLeft(id);
  });

  it('refuses an oversized remote-runners with one line naming the param and the size', async () => {
    const big = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ name: `host-number-${i}-${'x'.repeat(60)}`, arch: 'x86_64-linux' })));
    const file = join(work, 'big-runners.json');
    await writeFile(file, big);
    const { result, id } = await run('ok', [], { 'remote-runners': `@${file}` });
    expect(result.exitCode).not.toBe(0);
    expect(lastLine(result.stderr)).toMatch(/param remote-runners.*larger than the \d+ allowed/);
    await nothingLeft(id);
  });
});

// A small seeded generator, so a failure can be replayed.
function* randomValues(seed: number, count: number): Generator<string> {
  let s = seed >>> 0;
  const next = () => ((s = (s * 1664525 + 1013904223) >>> 0), s);
  const pool = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).filter((c) => c !== '|'), '\n', '\t', 'é', '世', '🚀', '$(', '`', "'", '"', ';', '\\'];
  for (let i = 0; i < count; i++) {
    const length = 1 + (next() % 40);
    yield Array.from({ length }, () => pool[next() % pool.length]).join('');
  }
}

describe('injection', { timeout: 120_000 }, () => {
  it('carries random printable, quoting and unicode bytes to the remote app byte for byte, and runs none of them', async () => {
    const values = [...randomValues(20261124, 24), '$(touch /tmp/pwned-inj)', '`touch /tmp/pwned-inj`', "'; touch /tmp/pwned-inj; '"];
    const params = Object.fromEntries(values.map((v, i) => [`v${i}`, v]));
    const repo = [...randomValues(7, 1)][0]!;
    const { result, outputs, id } = await run('inspect', [{ name: 'lab-h2', arch: 'x86_64-linux' }], params, { TEST_REPO: repo });
    expect(result.exitCode, result.all).toBe(0);
    const dump = JSON.parse(await readFile(join(outputs, 'runenv.json'), 'utf8')) as { env: Record<string, string>; params: Record<string, string> };
    expect(dump.params).toMatchObject(params);
    expect(dump.env.TEST_REPO).toBe(repo);
    expect((await labExec('lab-h2', ['sh', '-c', 'ls /tmp/pwned-* 2>/dev/null | wc -l'])).stdout.trim()).toBe('0');
    await expect(lstat('/tmp/pwned-inj')).rejects.toThrow();
    await nothingLeft(id);
  });
});

describe('outputs from a hostile remote', { timeout: 120_000 }, () => {
  it('never lands a symlink, a file written through one, or a fifo outside TEST_OUTPUTS_PATH', async () => {
    const { result, outputs, id } = await run('hostile-outputs', [{ name: 'lab-h3', arch: 'x86_64-linux' }]);
    expect(result.exitCode, result.all).toBe(0);
    expect((await readdir(outputs)).sort()).toEqual(expect.arrayContaining(['honest.txt']));
    for (const name of ['link-to-dir', 'link-to-passwd', 'a-fifo']) await expect(lstat(join(outputs, name))).rejects.toThrow();
    expect(result.stderr).toMatch(/refused output entry "link-to-dir"/);
    expect(result.stderr).toMatch(/refused output entry "a-fifo"|refused output entry "link-to-passwd"/);
    await nothingLeft(id);
  });
});

describe('exposure', { timeout: 120_000 }, () => {
  it('writes no key material into outputs or logs', async () => {
    const key = await readFile(join(labState, 'id_ed25519'), 'utf8');
    const body = key.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const { result, outputs } = await run('inspect', [{ name: 'lab-h1', arch: 'x86_64-linux' }]);
    expect(result.exitCode, result.all).toBe(0);
    const everything = [result.all ?? '', ...(await Promise.all((await readdir(outputs)).map((f) => readFile(join(outputs, f), 'utf8'))))].join('\n');
    for (const chunk of body.match(/.{16}/g) ?? []) expect(everything).not.toContain(chunk);
    expect(everything).not.toContain('BEGIN OPENSSH PRIVATE KEY');
  });
});
