// Integration test of scripts/lab: real lab hosts (network, mount and UTS namespaces
// with their own sshd and /nix) on this machine, reached through the SSH aliases.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options, type Result } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseLab, takeLab } from '../helpers/lab.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const lab = join(root, 'scripts/lab');
const stateDir = '/var/lib/remote-runner-lab';
const knownHosts = `${stateDir}/known_hosts`;
const sshConf = '/etc/ssh/ssh_config.d/remote-runner-lab.conf';
const hosts = ['lab-h1', 'lab-h2', 'lab-h3'] as const;
const addr = (host: string): string => `10.231.0.${10 + Number(host.slice('lab-h'.length))}`;

// An environment without HOME (nor anything else but PATH): the aliases must not need it.
const bare = { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false } satisfies Options;
// Local Nix as root without a daemon, build users or sandbox.
const nixEnv = {
  env: { NIX_CONFIG: 'build-users-group =\nsandbox = false\nexperimental-features = nix-command\n' },
} satisfies Options;

// Run a command to completion, bounded in time; never throws for a non-zero exit.
async function run(file: string, args: string[], options: Options = {}, ms = 20_000): Promise<Result> {
  return await execa(file, args, {
    reject: false,
    stdin: 'ignore',
    timeout: ms,
    cancelSignal: AbortSignal.timeout(ms + 1_000),
    ...options,
  });
}

// Run a command that must succeed; its failure message carries its output.
async function ok(file: string, args: string[], options: Options = {}, ms = 20_000): Promise<string> {
  const result = await run(file, args, options, ms);
  if (result.exitCode !== 0 || result.timedOut) {
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr)} ${String(result.stdout)}`);
  }
  return String(result.stdout).trim();
}

const labCmd = async (...args: string[]): Promise<string> => await ok(lab, args, {}, 40_000);
const ssh = async (host: string, command: string, options: Options = {}): Promise<Result> =>
  await run('ssh', [host, command], options);
const canConnect = async (address: string): Promise<boolean> =>
  (await run('bash', ['-c', `exec 3<>/dev/tcp/${address}/22`], {}, 5_000)).exitCode === 0;

describe('scripts/lab', () => {
  beforeAll(async () => {
    await takeLab();
    try {
      await labCmd('up', String(hosts.length));
    } catch (error) {
      await run(lab, ['down'], {}, 40_000);
      throw error;
    }
  }, 600_000);

  afterAll(async () => {
    await run(lab, ['down'], {}, 40_000);
    await releaseLab();
  }, 60_000);

  it('gives every host its own name, answered over ssh through its alias without HOME', { timeout: 20_000 }, async () => {
    for (const host of hosts) {
      expect(await ok('ssh', [host, 'hostname'], bare)).toBe(host);
    }
    const config = await ok('ssh', ['-G', 'lab-h2'], bare);
    expect(config).toMatch(/^hostname 10\.231\.0\.12$/m);
    expect(config).toMatch(/^user root$/m);
    expect(config).toMatch(/^stricthostkeychecking true$/m);
  });

  it('lists every host as up with its address and sshd pid', { timeout: 20_000 }, async () => {
    const status = await labCmd('status');
    for (const host of hosts) {
      expect(status).toMatch(new RegExp(`^${host}\\s+${addr(host).replaceAll('.', '\\.')}\\s+\\d+\\s+up\\s+up$`, 'm'));
    }
  });

  it('lets the root namespace and the other hosts reach each host on port 22', { timeout: 20_000 }, async () => {
    for (const host of hosts) {
      expect(await canConnect(addr(host)), `root namespace -> ${host}`).toBe(true);
    }
    const fromH1 = await ssh('lab-h1', `bash -c 'exec 3<>/dev/tcp/${addr('lab-h2')}/22 && head -c 7 <&3'`);
    expect(fromH1.exitCode, String(fromH1.stderr)).toBe(0);
    expect(fromH1.stdout).toBe('SSH-2.0');
    const fromH3 = await run(lab, ['exec', 'lab-h3', '--', 'bash', '-c', `exec 3<>/dev/tcp/${addr('lab-h1')}/22`]);
    expect(fromH3.exitCode, String(fromH3.stderr)).toBe(0);
  });

  it('gives every host its own /nix store, separate from the others and from the machine', { timeout: 20_000 }, async () => {
    const marker = `/nix/store/lab-test-marker-${process.pid}-${Date.now()}`;
    const written = await ssh('lab-h1', `mkdir -p /nix/store && echo only-on-h1 > ${marker} && cat ${marker}`);
    expect(written.stdout, String(written.stderr)).toBe('only-on-h1');
    expect((await ssh('lab-h2', `test -e ${marker}`)).exitCode).toBe(1);
    expect(existsSync(marker)).toBe(false);
    expect(await ok(lab, ['exec', 'lab-h1', '--', 'cat', marker])).toBe('only-on-h1');
    expect((await run(lab, ['exec', 'lab-h3', '--', 'test', '-e', marker])).exitCode).toBe(1);
  });

  it('refuses a host whose key does not match the pinned one', { timeout: 20_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lab-known-hosts-'));
    try {
      // lab-h2's key filed under lab-h1's address: a changed host key.
      const pinned = await readFile(knownHosts, 'utf8');
      const h2Line = pinned.split('\n').find((line) => line.startsWith(`${addr('lab-h2')},`));
      expect(h2Line).toBeDefined();
      const h2Key = h2Line!.split(' ').slice(1, 3).join(' ');
      const wrong = join(dir, 'wrong');
      await writeFile(wrong, `${addr('lab-h1')} ${h2Key}\n`);
      const changed = await run('ssh', ['-o', `UserKnownHostsFile=${wrong}`, 'lab-h1', 'true'], bare);
      expect(changed.exitCode).toBe(255);
      expect(changed.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);

      // An unknown host key is not accepted either.
      const empty = join(dir, 'empty');
      await writeFile(empty, '');
      const unknown = await run('ssh', ['-o', `UserKnownHostsFile=${empty}`, 'lab-h1', 'true'], bare);
      expect(unknown.exitCode).toBe(255);
      expect(unknown.stderr).toMatch(/Host key verification failed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs nix-store on a host and accepts a closure copied with nix copy through the alias', { timeout: 30_000 }, async () => {
    expect(await ok('ssh', ['lab-h1', 'nix-store --version'], bare)).toMatch(/^nix-store \(Nix\) \d+\.\d+/);
    const dir = await mkdtemp(join(tmpdir(), 'lab-nix-'));
    let path = '';
    try {
      const file = join(dir, 'lab-copy-test.txt');
      await writeFile(file, `copied to lab-h1 by ${process.pid} at ${Date.now()}\n`);
      path = await ok('nix-store', ['--add', file], nixEnv);
      expect(path).toMatch(/^\/nix\/store\/[0-9a-z]{32}-lab-copy-test\.txt$/);
      await ok('nix', ['copy', '--to', 'ssh://lab-h1', path], nixEnv, 25_000);
      expect((await ssh('lab-h1', `nix-store --check-validity ${path}`)).exitCode).toBe(0);
      expect((await ssh('lab-h1', `cat ${path}`)).stdout).toMatch(/^copied to lab-h1/);
      expect((await ssh('lab-h2', `nix-store --check-validity ${path}`)).exitCode).not.toBe(0);
    } finally {
      if (path) await run('nix-store', ['--delete', path], nixEnv);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes a host unreachable with stop-sshd while the others stay up, and brings it back with start-sshd and the same store', { timeout: 30_000 }, async () => {
    const marker = `/nix/store/lab-test-survives-${process.pid}`;
    expect((await ssh('lab-h2', `mkdir -p /nix/store && echo kept > ${marker}`)).exitCode).toBe(0);

    await labCmd('stop-sshd', 'lab-h2');
    const refused = await ssh('lab-h2', 'true');
    expect(refused.exitCode).toBe(255);
    expect(refused.stderr).toMatch(/Connection refused/);
    expect(await labCmd('status')).toMatch(/^lab-h2\s+10\.231\.0\.12\s+-\s+down\s+up$/m);
    expect(await ok('ssh', ['lab-h1', 'hostname'])).toBe('lab-h1');
    expect(await ok('ssh', ['lab-h3', 'hostname'])).toBe('lab-h3');
    // The namespaces live on without sshd.
    expect(await ok(lab, ['exec', 'lab-h2', '--', 'cat', marker])).toBe('kept');

    await labCmd('start-sshd', 'lab-h2');
    expect(await ok('ssh', ['lab-h2', `hostname && cat ${marker}`], bare)).toBe('lab-h2\nkept');
  });

  it('takes a host off the network with cut and puts it back with heal', { timeout: 30_000 }, async () => {
    await labCmd('cut', 'lab-h3');
    const cut = await run('ssh', ['-o', 'ConnectTimeout=1', 'lab-h3', 'true']);
    expect(cut.exitCode).toBe(255);
    expect(await labCmd('status')).toMatch(/^lab-h3\s+\S+\s+\d+\s+down\s+down$/m);
    await labCmd('heal', 'lab-h3');
    expect(await ok('ssh', ['lab-h3', 'hostname'])).toBe('lab-h3');
  });

  it('keeps the running lab when up is run again with the same number of hosts', { timeout: 30_000 }, async () => {
    const before = await labCmd('status');
    await labCmd('up', String(hosts.length));
    expect(await labCmd('status')).toBe(before);
  });

  it('leaves nothing behind after down', { timeout: 40_000 }, async () => {
    await labCmd('down');
    expect(await ok('ip', ['netns', 'list'])).not.toMatch(/\blab-h\d/);
    expect((await run('ip', ['link', 'show', 'lab-br0'])).exitCode).not.toBe(0);
    expect(await ok('ip', ['-o', 'link', 'show'])).not.toMatch(/veth-lab-h/);
    const sshds = await run('pgrep', ['-a', 'sshd']);
    expect(String(sshds.stdout)).not.toMatch(/ -f |remote-runner-lab/);
    expect(String((await run('findmnt', ['-rn', '-o', 'TARGET,SOURCE'])).stdout)).not.toMatch(/remote-runner-lab/);
    expect(existsSync(sshConf)).toBe(false);
    expect(existsSync(stateDir)).toBe(false);
    expect(await labCmd('status')).toBe('no lab hosts');
    // down is safe when nothing is up.
    await labCmd('down');
  });
});
