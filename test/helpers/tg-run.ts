// Run the tg-run bin in temp dirs and read what it reports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const repoRoot = new URL('../..', import.meta.url).pathname;

export interface TgRunResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  runId: string;
  outputsDir: string;
  rows: Array<{ instance: string; group: string; host: string; outcome: string }>;
}

// Temp dirs that remove themselves: call cleanup() in afterEach.
export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function startTgRun(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): ResultPromise<{ reject: false; all: true }> {
  return execa('node', [join(repoRoot, 'bin/tg-run.js'), ...args], {
    reject: false,
    all: true,
    cwd: options.cwd ?? repoRoot,
    env: options.env ?? {},
    timeout: 240_000,
  }) as ResultPromise<{ reject: false; all: true }>;
}

// Parse the summary table and the run id out of tg-run's output.
export function readResult(result: { exitCode?: number | undefined; stdout: string; stderr: string }, outputsDir: string): TgRunResult {
  const runId = /run (\w{20}):/.exec(result.stderr)?.[1] ?? '';
  const lines = result.stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith('INSTANCE'));
  const rows = [];
  for (const line of header < 0 ? [] : lines.slice(header + 1)) {
    if (line.trim() === '') break;
    const [instance = '', group = '', host = '', outcome = ''] = line.split(/\s{2,}/);
    rows.push({ instance, group, host, outcome });
  }
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, runId, outputsDir, rows };
}

export async function removeAll(dirs: string[]): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}
