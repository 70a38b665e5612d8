// Small pieces every benchmark uses: paths, timing, statistics, logging, commands.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const baselineScript = join(repoRoot, 'scripts/bench/baseline.sh');

// The repository's Nix settings, as scripts/lib/nix-env.sh exports them.
export const nixEnv: Record<string, string> = { NIX_USER_CONF_FILES: join(repoRoot, 'nix/nix.conf') };

const started = performance.now();

// A progress line on stderr; the table of results alone goes to stdout.
export function log(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${message}\n`);
}

export function elapsedS(): number {
  return (performance.now() - started) / 1000;
}

// Run `step` and return its wall time in ms with its value.
export async function timed<T>(step: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await step();
  return { value, ms: performance.now() - t0 };
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// A command that must succeed; its output is returned, its failure names it.
export async function must(command: string, args: string[], options: Options = {}): Promise<{ stdout: string; stderr: string }> {
  const result = await execa(command, args, { reject: false, stdin: 'ignore', timeout: 300_000, ...options });
  if (result.failed) {
    const out = `${String(result.stderr ?? '')}\n${String(result.stdout ?? '')}`.trim().split('\n').slice(-8).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (${result.exitCode ?? result.signal ?? result.shortMessage}):\n${out}`);
  }
  return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

// Temp dirs and other leftovers removed by cleanupTemps(), even after a failure or a signal.
const temps: string[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
export function onCleanup(fn: () => Promise<unknown>): void {
  cleanups.push(fn);
}
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `bench-${prefix}-`));
  temps.push(dir);
  return dir;
}
export async function cleanupTemps(): Promise<void> {
  await Promise.allSettled(cleanups.splice(0).map((fn) => fn()));
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

// Numbers as the report shows them.
// Below 10 ms with a decimal: a static binary's start is a few ms.
export const fmtMs = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
export const fmtRatio = (r: number): string => (Number.isFinite(r) ? r.toFixed(2) : 'n/a');
export const fmtMBs = (bytes: number, ms: number): string => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
