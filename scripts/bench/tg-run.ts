// One tg-run of a benchmark: the build's own tg-run (the bundled bin of the package
// measured), timed as a whole process, with the machine's CPU time and, while it
// runs, a sampler of its processes and the lab hosts'.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { RunSampler, type RunMemory } from './run-sampler.ts';
import { median, repoRoot } from './util.ts';

/** How a tg-run ended and what it cost. */
export interface TgRun {
  ms: number;
  exitCode: number | undefined;
  /** Instances that succeeded, from tg-run's count line. */
  succeeded: number;
  /** The summary table (or, without one, the end of stderr). */
  summary: string;
  stdout: string;
  stderr: string;
  /** Busy and total CPU seconds of the whole machine (every lab host included) during the run. */
  cpuBusyS: number;
  capacityS: number;
  /** Why the benchmark stopped the run early: its time bound, or the machine running low on memory. */
  stopped?: 'time' | 'memory';
  /** The least memory available on the machine during the run (MemAvailable), in MB. */
  minAvailableMB: number;
  memory: RunMemory;
}

// Busy and total CPU time of the machine so far, in seconds (from /proc/stat).
async function cpuTimes(): Promise<{ busy: number; all: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const hz = 100;
  return { busy: (user + nice + system + irq + softirq + steal) / hz, all: (user + nice + system + idle + iowait + irq + softirq + steal) / hz };
}

// MemAvailable of the machine, in MB.
async function availableMB(): Promise<number> {
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? Number.NaN) / 1000;
}

// The run is stopped when the machine has less than this left.
const MIN_AVAILABLE_MB = 2000;

// The instances that succeeded, from tg-run's count line ("16 instances: 15 success, 1 failure").
function successes(output: string): number {
  const line = /^\d+ instances?: .*$/m.exec(output)?.[0] ?? '';
  return Number(/(\d+) success/.exec(line)?.[1] ?? 0);
}

// Medians of tg-run's per-instance DURATION, COPY, RUN and PULL columns (seconds in, ms out).
export function phaseMedians(summary: string): Record<string, number> {
  const lines = summary.split('\n');
  const head = lines[0]?.split(/\s{2,}/) ?? [];
  const out: Record<string, number> = {};
  for (const col of ['DURATION', 'COPY', 'RUN', 'PULL']) {
    const c = head.indexOf(col);
    if (c < 0) continue;
    const values = lines.slice(1).map((l) => l.split(/\s{2,}/)[c]).filter((v): v is string => !!v && /^[\d.]+s$/.test(v)).map((v) => Number(v.slice(0, -1)) * 1000);
    if (values.length) out[col.toLowerCase()] = median(values);
  }
  return out;
}

/** What to run. */
export interface TgRunOptions {
  /** The tg-run program: `<build.tools>/bin/tg-run`. */
  tgRun: string;
  args: string[];
  env: Record<string, string>;
  /** The lab hosts whose processes are measured. */
  hosts: string[];
  /** How many instances the run starts. */
  instances: number;
  /** The run is stopped (TERM, then KILL) after this long. */
  boundMs: number;
  /** Sampling: ms between resident-set samples, and samples between scans of /proc. */
  tickMs?: number;
  scanEvery?: number;
}

export async function runTgRun(o: TgRunOptions): Promise<TgRun> {
  const c0 = await cpuTimes();
  const t0 = performance.now();
  const child = execa(o.tgRun, o.args, {
    cwd: repoRoot,
    env: o.env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: o.boundMs,
    forceKillAfterDelay: 30_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  const sampler = new RunSampler({ root: child.pid!, hosts: o.hosts, expected: o.instances, ...(o.tickMs ? { tickMs: o.tickMs } : {}), ...(o.scanEvery ? { scanEvery: o.scanEvery } : {}) });
  sampler.start();
  let minAvailableMB = await availableMB();
  let lowMemory = false;
  const watch = setInterval(() => {
    void availableMB().then((mb) => {
      minAvailableMB = Math.min(minAvailableMB, mb);
      if (mb < MIN_AVAILABLE_MB && !lowMemory) {
        lowMemory = true;
        child.kill('SIGTERM');
      }
    });
  }, 1000);
  const r = await child;
  clearInterval(watch);
  const ms = performance.now() - t0;
  const memory = sampler.stop();
  const c1 = await cpuTimes();
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  const lines = stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith('INSTANCE'));
  const summary = header < 0 ? '' : lines.slice(header).join('\n');
  return {
    ms,
    exitCode: r.exitCode,
    succeeded: successes(`${stdout}\n${stderr}`),
    summary: summary || stderr.split('\n').slice(-10).join('\n'),
    stdout,
    stderr,
    cpuBusyS: c1.busy - c0.busy,
    capacityS: c1.all - c0.all,
    ...(lowMemory ? { stopped: 'memory' as const } : r.timedOut ? { stopped: 'time' as const } : {}),
    minAvailableMB,
    memory,
  };
}
