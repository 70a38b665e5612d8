// Integration test of scripts/lab: real lab hosts (network, mount, UTS and PID namespaces
// with their own sshd and /nix) on this machine, reached through the SSH aliases.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
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

// The command name of each host's holder, pid 1 of the host's PID namespace.
const init = 'lab-init';

// A process as `ps` on a host lists it: pids are the host's own.
interface HostProcess {
  pid: number;
  ppid: number;
  stat: string;
  comm: string;
  args: string;
}
const psArgs = ['ps', '-e', '-o', 'pid=,ppid=,stat=,comm=,args='];
function parsePs(out: string): HostProcess[] {
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(line);
      if (!m) throw new Error(`unexpected ps line: ${line}`);
      return { pid: Number(m[1]), ppid: Number(m[2]), stat: m[3]!, comm: m[4]!, args: m[5]! };
    });
}
// ps -e on a host, run by scripts/lab exec (nothing else of ours runs there meanwhile) or over ssh.
const psExec = async (host: string): Promise<HostProcess[]> => parsePs(await ok(lab, ['exec', host, '--', ...psArgs]));
const psSsh = async (host: string): Promise<HostProcess[]> => parsePs(await ok('ssh', [host, psArgs.join(' ')]));

// The controller's view of a process: its PID namespace, its pid inside that namespace
// (the last field of NSpid), its start time (to tell a reused pid), command line, state.
interface ControllerProcess {
  pid: number;
  pidNs: string;
  nsPid: number;
  start: string;
  args: string;
  zombie: boolean;
}
async function controllerProcess(pid: number): Promise<ControllerProcess | undefined> {
  try {
    const [pidNs, status, stat, cmdline] = await Promise.all([
      readlink(`/proc/${pid}/ns/pid`),
      readFile(`/proc/${pid}/status`, 'utf8'),
      readFile(`/proc/${pid}/stat`, 'latin1'),
      readFile(`/proc/${pid}/cmdline`, 'latin1'),
    ]);
    const nsPid = Number(/^NSpid:\s+(?:\d+\s+)*?(\d+)\s*$/m.exec(status)?.[1]);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, pidNs, nsPid, start: fields[19]!, args: cmdline.split('\0').join(' ').trim(), zombie: fields[0] === 'Z' };
  } catch {
    return undefined; // gone, or not ours to read
  }
}
// Every process this machine runs, as the controller sees them.
async function controllerProcesses(): Promise<ControllerProcess[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  return (await Promise.all(pids.map(controllerProcess))).filter((p): p is ControllerProcess => p !== undefined && !p.zombie);
}
// The controller's set of a host's processes: those in the PID namespace of its holder.
async function hostPidNs(host: string): Promise<string> {
  const holder = Number((await readFile(`${stateDir}/${host}/holder.pid`, 'utf8')).trim());
  return await readlink(`/proc/${holder}/ns/pid`);
}
async function controllerSetOf(host: string): Promise<ControllerProcess[]> {
  const pidNs = await hostPidNs(host);
  return (await controllerProcesses()).filter((p) => p.pidNs === pidNs);
}
const sameProcess = (a: ControllerProcess, b: ControllerProcess | undefined): boolean =>
  b !== undefined && !b.zombie && a.pid === b.pid && a.start === b.start;

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
      expect(status).toMatch(new RegExp(`^${host}\\s+${addr(host).replaceAll('.', '\\.')}\\s+\\d+\\s+up\\s+up\\s+-$`, 'm'));
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
    expect(await labCmd('status')).toMatch(/^lab-h2\s+10\.231\.0\.12\s+-\s+down\s+up\s+-$/m);
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
    expect(await labCmd('status')).toMatch(/^lab-h3\s+\S+\s+\d+\s+down\s+down\s+-$/m);
    await labCmd('heal', 'lab-h3');
    expect(await ok('ssh', ['lab-h3', 'hostname'])).toBe('lab-h3');
  });

  it('gives each host its own PID namespace: ps on lab-h1 lists only its own processes', { timeout: 30_000 }, async () => {
    // A process of the controller, which no host may list.
    const tag = `${4000 + (process.pid % 1000)}.${Date.now() % 1_000_000}`;
    const controllerOnly = execa('sleep', [tag], { reject: false, stdin: 'ignore' });
    try {
      const machineWide = (await controllerProcesses()).length;
      const before = await controllerSetOf('lab-h1');
      const viaExec = await psExec('lab-h1');
      const after = await controllerSetOf('lab-h1');
      const viaSsh = await psSsh('lab-h1');

      for (const listed of [viaExec, viaSsh]) {
        expect(listed.find((p) => p.pid === 1)?.comm).toBe(init);
        expect(listed.some((p) => p.comm === 'sshd' && p.ppid === 0), JSON.stringify(listed)).toBe(true);
        expect(listed.some((p) => p.args.includes(tag))).toBe(false);
        expect(listed.length).toBeLessThan(machineWide);
      }
      // Through scripts/lab exec, ps is the only process of ours on the host: what it lists
      // is exactly what the controller finds in the host's PID namespace, and ps.
      const seen = new Set([...before, ...after].map((p) => p.nsPid));
      const steady = before.filter((p) => after.some((q) => sameProcess(p, q))).map((p) => p.nsPid);
      const others = viaExec.filter((p) => p.comm !== 'ps');
      expect(viaExec.filter((p) => p.comm === 'ps')).toHaveLength(1);
      expect(others.map((p) => p.pid).filter((pid) => !seen.has(pid)), JSON.stringify(viaExec)).toEqual([]);
      expect(steady.filter((pid) => !others.some((p) => p.pid === pid))).toEqual([]);
      // Over ssh the host lists, besides those, only the session's own sshd, shell and ps.
      const extra = viaSsh.filter((p) => !seen.has(p.pid));
      expect(extra.filter((p) => !['sshd', 'bash', 'sh', 'ps'].includes(p.comm)), JSON.stringify(viaSsh)).toEqual([]);
      // The host's processes are the controller's too, in a PID namespace of their own.
      const controllerNs = await readlink('/proc/self/ns/pid');
      expect(before.length).toBeGreaterThan(0);
      expect(before.every((p) => p.pidNs !== controllerNs)).toBe(true);
      expect(await hostPidNs('lab-h2')).not.toBe(await hostPidNs('lab-h1'));
    } finally {
      controllerOnly.kill('SIGKILL');
      await controllerOnly;
    }
  });

  it("a process started over ssh on lab-h1 is not visible on lab-h2 nor in the controller's set of lab-h2's processes", { timeout: 30_000 }, async () => {
    const tag = `${5000 + (process.pid % 1000)}.${Date.now() % 1_000_000}`;
    const started = await ssh('lab-h1', `sleep ${tag} </dev/null >/dev/null 2>&1 & echo $!`);
    expect(started.exitCode, String(started.stderr)).toBe(0);
    const inner = Number(started.stdout);
    try {
      // lab-h1 lists it, under the pid its shell gave.
      for (const listed of [await psExec('lab-h1'), await psSsh('lab-h1')]) {
        expect(listed.find((p) => p.args === `sleep ${tag}`)?.pid).toBe(inner);
      }
      // lab-h2 does not, through scripts/lab exec nor over ssh.
      for (const listed of [await psExec('lab-h2'), await psSsh('lab-h2')]) {
        expect(listed.some((p) => p.args.includes(tag)), JSON.stringify(listed)).toBe(false);
      }
      // The controller sees it in lab-h1's PID namespace, with that pid there; not in lab-h2's.
      const mine = (await controllerProcesses()).filter((p) => p.args === `sleep ${tag}`);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.pidNs).toBe(await hostPidNs('lab-h1'));
      expect(mine[0]!.nsPid).toBe(inner);
      expect(mine[0]!.pid).not.toBe(inner);
      expect((await controllerSetOf('lab-h2')).some((p) => p.args.includes(tag))).toBe(false);
      expect((await controllerSetOf('lab-h1')).some((p) => p.args === `sleep ${tag}`)).toBe(true);
    } finally {
      await ssh('lab-h1', `kill ${inner}`);
    }
    expect((await psExec('lab-h1')).some((p) => p.args.includes(tag))).toBe(false);
  });

  it("reaps a host's orphans: a process that outlives its ssh session leaves no zombie on the host", { timeout: 30_000 }, async () => {
    const started = await ssh('lab-h1', 'sleep 0.3 </dev/null >/dev/null 2>&1 & echo $!');
    expect(started.exitCode, String(started.stderr)).toBe(0);
    const orphan = Number(started.stdout);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const listed = await psExec('lab-h1');
    expect(listed.find((p) => p.pid === orphan)).toBeUndefined();
    expect(listed.filter((p) => p.stat.startsWith('Z'))).toEqual([]);
  });

  it("reaches no process of the controller nor of another host with kill -9 from a host, not even kill -9 -1", { timeout: 40_000 }, async () => {
    const controllerOnly = execa('sleep', ['600'], { reject: false, stdin: 'ignore' });
    try {
      const target = controllerOnly.pid!;
      // The controller's pid names no process on the host.
      expect((await ssh('lab-h1', `test -e /proc/${target}`)).exitCode).toBe(1);
      const direct = await ssh('lab-h1', `kill -9 ${target}`);
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stderr).toMatch(/No such process/);

      // kill -9 -1 as root on lab-h3 ends every process of lab-h3 but its init, and only
      // those. It runs only once the shell is sure it is inside the host's PID namespace.
      const controllerNs = await readlink('/proc/self/ns/pid');
      const killAll = await run(lab, ['exec', 'lab-h3', '--', 'sh', '-c',
        `[ "$(readlink /proc/self/ns/pid)" != '${controllerNs}' ] && [ "$(cat /proc/1/comm)" = ${init} ] && kill -9 -1`]);
      expect(killAll.exitCode, String(killAll.stderr)).toBe(0);

      expect(controllerOnly.exitCode).toBeNull();
      expect(() => process.kill(target, 0)).not.toThrow();
      expect(await ok('ssh', ['lab-h1', 'hostname'])).toBe('lab-h1');
      expect(await ok('ssh', ['lab-h2', 'hostname'])).toBe('lab-h2');
      expect(await labCmd('status')).toMatch(/^lab-h3\s+10\.231\.0\.13\s+-\s+down\s+up\s+-$/m);
      expect((await psExec('lab-h3')).map((p) => p.comm).sort()).toEqual([init, 'ps']);
    } finally {
      controllerOnly.kill('SIGKILL');
      await controllerOnly;
    }
    await labCmd('start-sshd', 'lab-h3');
    expect(await ok('ssh', ['lab-h3', 'hostname'])).toBe('lab-h3');
  });

  it('keeps the running lab when up is run again with the same number of hosts', { timeout: 30_000 }, async () => {
    const before = await labCmd('status');
    await labCmd('up', String(hosts.length));
    expect(await labCmd('status')).toBe(before);
  });

  it('leaves nothing behind after down: no process of any host, namespace, link, mount or file', { timeout: 40_000 }, async () => {
    // A process on every host that has left its ssh session behind, as a daemon would.
    for (const host of hosts) {
      const started = await ssh(host, 'setsid sleep 900 </dev/null >/dev/null 2>&1 & echo $!');
      expect(started.exitCode, String(started.stderr)).toBe(0);
    }
    // Every process of every host, as the controller sees them: those in the host's PID
    // namespace, and the lab's own in the host's network namespace.
    const all = await controllerProcesses();
    const before: ControllerProcess[] = [];
    for (const host of hosts) {
      const pidNs = await hostPidNs(host);
      const inNet = new Set((await ok('ip', ['netns', 'pids', host])).split('\n').filter(Boolean).map(Number));
      const mine = all.filter((p) => p.pidNs === pidNs || inNet.has(p.pid));
      expect(mine.filter((p) => p.args === 'sleep 900')).toHaveLength(1);
      before.push(...mine);
    }

    await labCmd('down');
    const left: ControllerProcess[] = [];
    for (const p of before) {
      const now = await controllerProcess(p.pid);
      if (sameProcess(p, now)) left.push(p);
    }
    expect(left).toEqual([]);
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
