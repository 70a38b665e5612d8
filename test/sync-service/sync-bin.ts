// Starts our sync-service bin as a child process and keeps what it logs, with times.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { firstLine } from '../helpers/process.ts';

// A running sync-service bin.
export interface SyncBin {
  url: string;
  /** Lines the service wrote to stderr, with Date.now() at arrival. */
  logs: Array<{ at: number; line: string }>;
  /** The first line that matches `pattern`, waiting up to `ms` for it. */
  logged(pattern: RegExp, ms?: number): Promise<{ at: number; line: string }>;
  /** Undefined while the process runs. */
  exitCode(): number | undefined;
  /** The service's resident set size now, in MiB, from /proc/<pid>/status. */
  rssMiB(): number;
  close(): Promise<void>;
}

const bin = new URL('../../bin/sync-service.js', import.meta.url).pathname;

// Start bin/sync-service.js on a free port with `args`; resolves once it prints its address.
export async function startSyncBin(args: string[] = []): Promise<SyncBin> {
  const child = execa('node', [bin, '--port', '0', ...args], { reject: false, stdin: 'ignore', timeout: 300_000 });
  const logs: SyncBin['logs'] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => logs.push({ at: Date.now(), line }));
  let exitCode: number | undefined;
  void child.then((result) => (exitCode = result.exitCode ?? -1));
  const url = await firstLine(child.stdout!, AbortSignal.timeout(15_000));
  return {
    url,
    logs,
    exitCode: () => exitCode,
    async logged(pattern, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = logs.find((l) => pattern.test(l.line));
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${ms} ms; last lines: ${logs.slice(-3).map((l) => l.line.slice(0, 300)).join(' | ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    rssMiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024,
    async close() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
