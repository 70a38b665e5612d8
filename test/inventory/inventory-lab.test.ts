// The inventory against real SSH hosts (scripts/lab): --check with a stopped sshd and a cut
// link, --out-dir files that ssh -F and Nix's host key field accept, and --live-only, in the bin
// and in choose-server.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunners } from '../../helpers/inventory/index.ts';
import { packParams } from '../../helpers/runenv/index.ts';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { repoRoot } from '../helpers/tg-run.ts';
import { instanceEnv } from '../runenv/contract.ts';

const HOSTS = ['lab-h1', 'lab-h2', 'lab-h3'];
const RUNNERS = JSON.stringify(HOSTS.map((name) => ({ name, arch: 'x86_64-linux' })));
const addr = (host: string): string => `10.231.0.${10 + Number(host.slice('lab-h'.length))}`;
// A bare environment: no HOME, no SSH_AUTH_SOCK, as local:exec gives an instance.
const bare = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

const lab = (...args: string[]) => execa(`${repoRoot}scripts/lab`, args, { timeout: 120_000, stdin: 'ignore' });

// One user of the lab at a time, machine-wide: the lock every lab test takes. It is held by a
// `cat` that lives as long as its stdin, so ending stdin, or this process dying, releases it.
const LAB_USER_LOCK = '/run/remote-runner-lab.user.lock';
const LOCK_WAIT_S = 450;

// Resolves once the lock is held; the holder is wrapped, as a subprocess is itself a promise.
async function takeLab(): Promise<{ holder: ResultPromise }> {
  const holder = execa('flock', ['-w', String(LOCK_WAIT_S), LAB_USER_LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdin: 'pipe', reject: false });
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve());
    void holder.then((r) => reject(new Error(`cannot take the lab lock ${LAB_USER_LOCK} within ${LOCK_WAIT_S} s: ${r.stderr || `exit ${r.exitCode}`}`)));
  });
  return { holder };
}

const inventory = (args: string[]) =>
  execa('node', [`${repoRoot}bin/inventory.js`, ...args], { env: bare, extendEnv: false, reject: false, timeout: 60_000, stdin: 'ignore' });

// Run the bin and measure its wall time.
async function timedInventory(args: string[]) {
  const started = performance.now();
  const result = await inventory(args);
  return { result, ms: performance.now() - started };
}

// The --check table's row for `host`, split into its first six columns and the detail.
function row(table: string, host: string): { cells: string[]; detail: string } {
  const line = table.split('\n').find((l) => l.startsWith(`${host} `));
  expect(line, `no row for ${host} in:\n${table}`).toBeDefined();
  const cells = line!.split(/\s+/);
  return { cells: cells.slice(0, 6), detail: cells.slice(6).join(' ') };
}

let dir: string;
let holder: ResultPromise | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inventory-lab-'));
  ({ holder } = await takeLab());
  await lab('down');
  await lab('up', String(HOSTS.length));
}, (LOCK_WAIT_S + 150) * 1000);

afterAll(async () => {
  try {
    await execa(`${repoRoot}scripts/lab`, ['down'], { timeout: 60_000, stdin: 'ignore', reject: false });
  } finally {
    holder?.stdin?.end();
    await holder;
    await rm(dir, { recursive: true, force: true });
  }
}, 90_000);

describe('inventory with lab hosts', () => {
  it('reports every lab host up, with SSH, Nix and x86_64-linux', { timeout: 30_000 }, async () => {
    const { result } = await timedInventory(['--runners', RUNNERS, '--check']);
    expect(result.exitCode, `${result.stdout}\n${result.stderr}`).toBe(0);
    for (const host of HOSTS) {
      const { cells, detail } = row(result.stdout, host);
      expect(cells).toEqual([host, 'x86_64-linux', 'ok', expect.stringMatching(/^\d+\.\d+/), 'x86_64-linux', 'up']);
      expect(detail).toMatch(/^nix-store \(Nix\) /);
    }
  });

  it('writes an ssh_config, known_hosts and machines file with which ssh reaches every host without HOME', { timeout: 60_000 }, async () => {
    const out = join(dir, 'out');
    const { result } = await timedInventory(['--runners', RUNNERS, '--out-dir', out]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await readFile(join(out, 'ssh_config'), 'utf8')).toContain(`UserKnownHostsFile ${join(out, 'known_hosts')}`);
    for (const host of HOSTS) {
      const ssh = await execa('ssh', ['-F', join(out, 'ssh_config'), host, 'hostname'], { env: bare, extendEnv: false, reject: false, timeout: 20_000, stdin: 'ignore' });
      expect(ssh.stdout, ssh.stderr).toBe(host);
    }

    // The machines file: each host by address, as x86_64-linux, with a host key that ssh accepts
    // the way Nix passes it (a known_hosts file of `host <decoded key>`).
    const machines = await readFile(join(out, 'machines'), 'utf8');
    const lines = machines.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines).toHaveLength(HOSTS.length);
    for (const [i, host] of HOSTS.entries()) {
      const [uri, systems, identity, , , , , hostKey] = lines[i]!.split(' ');
      expect(uri).toBe(`ssh://root@${addr(host)}`);
      expect(systems).toBe('x86_64-linux');
      const knownHosts = join(dir, `nix-known-hosts-${host}`);
      await writeFile(knownHosts, `${addr(host)} ${Buffer.from(hostKey!, 'base64').toString('utf8')}\n`);
      const options = ['-F', '/dev/null', '-i', identity!, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
      const ssh = await execa('ssh', [...options, `root@${addr(host)}`, 'hostname'], { env: bare, extendEnv: false, reject: false, timeout: 20_000, stdin: 'ignore' });
      expect(ssh.stdout, ssh.stderr).toBe(host);
    }
    expect((await loadRunners(`@${join(out, 'machines')}`)).map((e) => [e.name, e.arch])).toEqual(HOSTS.map((h) => [addr(h), 'x86_64-linux']));

    // --format ssh-config alone points at the known_hosts files ssh -G resolved.
    const printed = await inventory(['--runners', RUNNERS, '--format', 'ssh-config']);
    const config = join(dir, 'printed_ssh_config');
    await writeFile(config, printed.stdout);
    const ssh = await execa('ssh', ['-F', config, 'lab-h3', 'hostname'], { env: bare, extendEnv: false, reject: false, timeout: 20_000, stdin: 'ignore' });
    expect(ssh.stdout, ssh.stderr).toBe('lab-h3');
  });

  it('reports a host whose sshd was stopped as down within its timeout while the others stay up', { timeout: 60_000 }, async () => {
    await lab('stop-sshd', 'lab-h2');
    const { result, ms } = await timedInventory(['--runners', RUNNERS, '--check', '--timeout', '3s']);
    expect(ms).toBeLessThan(3_000 + 3_000);
    expect(result.exitCode, result.stdout).toBe(1);
    expect(row(result.stdout, 'lab-h1').cells[5]).toBe('up');
    expect(row(result.stdout, 'lab-h3').cells[5]).toBe('up');
    const down = row(result.stdout, 'lab-h2');
    expect(down.cells).toEqual(['lab-h2', 'x86_64-linux', 'failed', '-', '-', 'down']);
    expect(down.detail).toBe('ssh lab-h2 (10.231.0.12:22): connection refused');
  });

  it('drops the stopped host with --live-only, from the list and from the files', { timeout: 60_000 }, async () => {
    const out = join(dir, 'live');
    const { result } = await timedInventory(['--runners', RUNNERS, '--live-only', '--timeout', '3s', '--out-dir', out]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { name: 'lab-h1', arch: 'x86_64-linux' },
      { name: 'lab-h3', arch: 'x86_64-linux' },
    ]);
    expect(row(result.stderr, 'lab-h2').cells[5]).toBe('down');
    const machines = await readFile(join(out, 'machines'), 'utf8');
    expect(machines).toContain(`ssh://root@${addr('lab-h1')} x86_64-linux`);
    expect(machines).not.toContain(addr('lab-h2'));
    expect(await readFile(join(out, 'ssh_config'), 'utf8')).not.toMatch(/^Host lab-h2$/m);
  });

  it('sends no instance to the stopped host when choose-server has remote-runners-live-only', { timeout: 60_000 }, async () => {
    let sync: SyncService | undefined;
    try {
      sync = await startSyncService({ port: 0, log: () => {} });
      const env = instanceEnv({
        TEST_RUN: `inventory-lab-${process.pid}`,
        TEST_GROUP_INSTANCE_COUNT: '3',
        TEST_INSTANCE_COUNT: '3',
        TEST_INSTANCE_PARAMS: packParams({ 'remote-runners': RUNNERS, 'remote-runners-live-only': 'true', 'remote-runners-check-timeout': '3s' }),
        SYNC_SERVICE_HOST: '127.0.0.1',
        SYNC_SERVICE_PORT: String(sync.port),
      });
      const results = await Promise.all(
        [1, 2, 3].map(() => execa('node', [`${repoRoot}bin/choose-server.js`], { env, extendEnv: false, reject: false, timeout: 30_000, stdin: 'ignore' })),
      );
      for (const r of results) {
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stderr).toBe('choose-server: remote-runners-live-only: dropping lab-h2: ssh lab-h2 (10.231.0.12:22): connection refused');
      }
      expect(results.map((r) => r.stdout).sort()).toEqual(['lab-h1,x86_64-linux', 'lab-h1,x86_64-linux', 'lab-h3,x86_64-linux']);
    } finally {
      await sync?.close();
    }
  });

  it('reports a host cut off the network as down once its timeout has passed, not later', { timeout: 60_000 }, async () => {
    await lab('start-sshd', 'lab-h2');
    await lab('cut', 'lab-h3');
    try {
      const { result, ms } = await timedInventory(['--runners', RUNNERS, '--check', '--timeout', '2s']);
      expect(ms).toBeLessThan(2_000 + 3_000);
      expect(result.exitCode, result.stdout).toBe(1);
      expect(row(result.stdout, 'lab-h1').cells[5]).toBe('up');
      expect(row(result.stdout, 'lab-h2').cells[5]).toBe('up');
      const cut = row(result.stdout, 'lab-h3');
      expect(cut.cells[5]).toBe('down');
      expect(cut.detail).toMatch(/^no answer within 2 s \(connecting\)$|host unreachable|timed out/);
    } finally {
      await lab('heal', 'lab-h3');
    }
  });
});
