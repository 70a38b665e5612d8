// The processes of a run as /proc shows them: resident sets and CPU time of the
// controller's side (tg-run, the run's controller, every instance's process) and of
// each lab host (its sshd, its agent and the apps the agent started), sampled while
// the run goes on.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';

const LAB_STATE = '/var/lib/remote-runner-lab';
const PAGE_KIB = 4;
const buffer = Buffer.alloc(64 * 1024);

// A small /proc file, read with one buffer for every call (a scan reads thousands).
function readProc(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.toString('latin1', 0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** One process: its parent, command name, resident set (KiB) and CPU time so far (clock ticks). */
export interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  rssKiB: number;
  cpuTicks: number;
  /** Start time in ticks since boot: tells a process from a later one with the same pid. */
  start: number;
}

// Every process on the machine (lab hosts' included: their PID namespaces are nested in ours).
export function scanProcs(): Map<number, Proc> {
  const procs = new Map<number, Proc>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const stat = readProc(`/proc/${name}/stat`);
    if (!stat) continue;
    const close = stat.lastIndexOf(')');
    // Fields after the command name, from field 3 (state) on.
    const f = stat.slice(close + 2).split(' ');
    procs.set(Number(name), {
      pid: Number(name),
      ppid: Number(f[1]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      rssKiB: Number(f[21]) * PAGE_KIB,
      cpuTicks: Number(f[11]) + Number(f[12]),
      start: Number(f[19]),
    });
  }
  return procs;
}

// VmRSS of a live process, in KiB.
export function vmRssKiB(pid: number): number | undefined {
  const status = readProc(`/proc/${pid}/status`);
  const m = status && /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/** A resident set taken apart (smaps_rollup): what is shared with other processes and what is the process's own. */
export interface Rollup {
  rssKiB: number;
  /** Proportional share: each shared page divided among the processes that map it. */
  pssKiB: number;
  /** Anonymous memory: heaps and stacks, the process's own. */
  anonKiB: number;
}

export function rollup(pid: number): Rollup | undefined {
  const text = readProc(`/proc/${pid}/smaps_rollup`);
  if (!text) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssKiB: field('Rss'), pssKiB: field('Pss'), anonKiB: field('Anonymous') };
}

// How many files a process has open, and its limit (RLIMIT_NOFILE, soft).
export function openFiles(pid: number): { open: number; limit: number } | undefined {
  try {
    const open = readdirSync(`/proc/${pid}/fd`).length;
    const limit = Number(/^Max open files\s+(\d+|unlimited)/m.exec(readProc(`/proc/${pid}/limits`) ?? '')?.[1] ?? Number.NaN);
    return { open, limit };
  } catch {
    return undefined;
  }
}

export function cmdlineOf(pid: number): string[] {
  return (readProc(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean);
}

export function environValue(pid: number, key: string): string | undefined {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    return environ.split('\0').find((kv) => kv.startsWith(`${key}=`))?.slice(key.length + 1);
  } catch {
    return undefined;
  }
}

// The run's controller's socket (docs/controller.md): /tmp/remote-runner-<uid>/<sha256(run)[:20]>.sock.
export function controllerSocket(run: string): string {
  const uid = process.getuid?.() ?? 0;
  return join('/tmp', `remote-runner-${uid}`, `${createHash('sha256').update(run).digest('hex').slice(0, 20)}.sock`);
}

// `root` and every process below it.
export function subtree(procs: Map<number, Proc>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const out: number[] = [];
  const stack = procs.has(root) ? [root] : [];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

// The PID namespace of a process ("pid:[4026532…]").
export function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

// Each lab host's PID namespace, by the host's holder (the init of that namespace; its
// pid, as this machine sees it, is in holder.pid). The host's sshd and everything it
// starts live in that namespace, though sshd was entered into it from outside.
export function labNamespaces(hosts: string[]): Map<string, string> {
  const namespaces = new Map<string, string>();
  for (const host of hosts) {
    const pid = Number(readProc(join(LAB_STATE, host, 'holder.pid'))?.trim());
    const ns = pid > 0 ? pidNamespace(pid) : undefined;
    if (ns) namespaces.set(ns, host);
  }
  return namespaces;
}
