// Stop a process group: SIGTERM first, SIGKILL after a grace period.
import type { ChildProcess } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { once } from 'node:events';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

// Send `signal` to the child's whole process group (it must be spawned detached).
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

// Terminate the child's process group and resolve once the child has exited.
export async function terminateGroup(child: ChildProcess, graceMs: number): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => {});
  signalGroup(child, 'SIGTERM');
  const timer = new AbortController();
  const grace = sleep(graceMs, 'timeout' as const, { signal: timer.signal }).catch(() => 'exited' as const);
  if ((await Promise.race([exited.then(() => 'exited' as const), grace])) === 'timeout') {
    signalGroup(child, 'SIGKILL');
    await exited;
  }
  timer.abort();
  // The leader is gone; stragglers in its group still get the KILL.
  if (child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // no group left
    }
  }
}

// Exit status the way a shell reports it: the code, or 128 + the signal number.
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 0;
}

// SIGKILL every process (but this one) whose environment holds `key=value`: what a
// run started and left behind, even in sessions of their own. Linux only (/proc);
// resolves with the pids it killed.
export async function killByEnv(key: string, value: string): Promise<number[]> {
  const needle = Buffer.from(`${key}=${value}\0`);
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${pid}/environ`);
      if (environ.subarray(0, needle.length).equals(needle) || environ.includes(Buffer.concat([Buffer.from([0]), needle]))) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return killed;
}
