// Real OpenSSH pieces for the SSH tests: an ssh-agent on a temp socket, an ssh_config
// file, a one-connection sshd on a lab host that logs every key it is offered, and a
// look at which processes are left in a process group.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../helpers/tg-run.ts';
import { fingerprint } from '../../helpers/shared/ssh-key.ts';

export const labKey = '/var/lib/remote-runner-lab/id_ed25519';
export const labKnownHosts = '/var/lib/remote-runner-lab/known_hosts';
export const labSshConfig = '/etc/ssh/ssh_config.d/remote-runner-lab.conf';

// Poll `check` every 50 ms until it holds, for at most `ms`; fails naming `what`.
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The error a promise rejects with, or a failure if it resolves; bounded by `ms`.
export async function rejection(promise: Promise<unknown>, ms = 20_000): Promise<Error> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Error>((resolve) => (timer = setTimeout(() => resolve(new Error(`still pending after ${ms} ms`)), ms)));
  try {
    const outcome = await Promise.race([promise.then(() => new Error('resolved instead of rejecting'), (error: unknown) => ({ error })), late]);
    if (outcome instanceof Error) throw outcome;
    return outcome.error as Error;
  } finally {
    clearTimeout(timer);
  }
}

// A fresh ed25519 key pair at `path` (and `path.pub`), with `comment`; resolves with its fingerprint.
export async function makeKey(path: string, comment: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { timeout: 10_000, stdin: 'ignore' });
  return fingerprintOf(`${path}.pub`);
}

// The fingerprint of a public key file (`type base64 comment`).
export async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const base64 = (await readFile(publicKeyFile, 'utf8')).split(' ')[1]!;
  return fingerprint(Buffer.from(base64, 'base64'));
}

/** A running ssh-agent on a socket of its own. */
export interface Agent {
  socket: string;
  stop(): Promise<void>;
}

// Start `ssh-agent -D` on `socket` and add `keys` to it, in that order.
export async function startAgent(socket: string, keys: string[]): Promise<Agent> {
  const child = execa('ssh-agent', ['-D', '-a', socket], { reject: false, stdin: 'ignore', timeout: 120_000 });
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await child;
  };
  try {
    await waitFor('ssh-agent listening', async () => (await execa('test', ['-S', socket], { reject: false })).exitCode === 0);
    for (const key of keys) await execa('ssh-add', ['-q', key], { env: { SSH_AUTH_SOCK: socket }, stdin: 'ignore', timeout: 10_000 });
  } catch (error) {
    await stop();
    throw error;
  }
  return { socket, stop };
}

// Write an ssh_config file; `hosts` maps each alias to its options.
export async function writeSshConfig(file: string, hosts: Record<string, Record<string, string>>, preamble: string[] = []): Promise<string> {
  const blocks = Object.entries(hosts).map(([alias, options]) =>
    [`Host ${alias}`, ...Object.entries(options).map(([key, value]) => `    ${key} ${value}`)].join('\n'),
  );
  await writeFile(file, `${[...preamble, ...blocks].join('\n')}\n`);
  return file;
}

// The options that log in to a lab host as the lab does, checking its pinned key.
export const labLogin = {
  User: 'root',
  IdentityFile: labKey,
  UserKnownHostsFile: labKnownHosts,
  GlobalKnownHostsFile: '/dev/null',
  StrictHostKeyChecking: 'yes',
  BatchMode: 'yes',
  ConnectTimeout: '5',
};

/** An sshd on a lab host for a single connection, logging at DEBUG1 (every offered key). */
export interface OneShotSshd {
  /** Everything it logged so far. */
  log(): string;
  /** Resolves once it has exited (after its one connection), or kills it after `ms`. */
  done(ms?: number): Promise<string>;
}

// Start `sshd -d` on `port` inside lab host `host`, with the host's own config and host key.
export async function oneShotSshd(host: string, port: number): Promise<OneShotSshd> {
  const child: ResultPromise = execa(
    `${repoRoot}scripts/lab`,
    ['exec', host, '--', 'timeout', '60', '/usr/sbin/sshd', '-d', '-e', '-p', String(port), '-o', 'PidFile=none', '-o', 'MaxAuthTries=6', '-f', '/etc/ssh/sshd_config'],
    { reject: false, stdin: 'ignore', all: true, timeout: 90_000 },
  );
  let log = '';
  child.all!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const ended = child.then(() => undefined);
  await Promise.race([
    waitFor(`sshd -d -p ${port} on ${host} listening`, () => log.includes(`Server listening on 0.0.0.0 port ${port}.`), 10_000),
    ended.then(() => {
      throw new Error(`sshd -d -p ${port} on ${host} exited: ${log}`);
    }),
  ]);
  return {
    log: () => log,
    done: async (ms = 10_000) => {
      const timer = setTimeout(() => child.kill('SIGTERM'), ms);
      await ended;
      clearTimeout(timer);
      return log;
    },
  };
}

// The processes whose process group is `pgid` (Linux /proc), as `pid state command line`.
export async function groupMembers(pgid: number): Promise<string[]> {
  const members: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(join('/proc', name, 'stat'), 'utf8');
      // Fields after the command name: state, ppid, pgrp, ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== pgid || state === 'Z') continue;
      const cmdline = (await readFile(join('/proc', name, 'cmdline'), 'utf8')).split('\0').join(' ').trim();
      members.push(`${name} ${state} ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

// What is left of process group `pgid` once its leader has been reaped: the leader must be
// gone at once; what it left behind has had SIGKILL and gets up to `ms` to finish exiting.
export async function leftoversOf(pgid: number, ms = 1_000): Promise<string[]> {
  const leader = (await groupMembers(pgid)).filter((member) => member.startsWith(`${pgid} `));
  if (leader.length > 0) return leader;
  const deadline = Date.now() + ms;
  let members = await groupMembers(pgid);
  while (members.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    members = await groupMembers(pgid);
  }
  return members;
}

// The children of this process whose command line holds `needle`, as `pid: command line`.
export async function childrenMatching(needle: string): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(join('/proc', name, 'stat'), 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = (await readFile(join('/proc', name, 'cmdline'), 'utf8')).split('\0').join(' ').trim();
      if (ppid === process.pid && cmdline.includes(needle)) found.set(Number(name), cmdline);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
