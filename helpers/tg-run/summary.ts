// The table tg-run ends with: one row per instance.
import type { Outcome } from './outcomes.ts';

/** The result of one instance. */
export interface InstanceResult {
  tag: string;
  group: string;
  index: number;
  host: string;
  outcome: Outcome;
  detail: string;
  durationMs: number;
  phases: Partial<Record<'copy' | 'build' | 'run' | 'pull', number>>;
  outputsPath: string;
}

const secs = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);

// Render results as an aligned text table.
export function renderSummary(results: InstanceResult[]): string {
  const rows = [
    ['INSTANCE', 'GROUP', 'HOST', 'OUTCOME', 'DURATION', 'COPY', 'RUN', 'PULL', 'DETAIL'],
    ...results.map((r) => [
      r.tag,
      r.group,
      r.host,
      r.outcome,
      secs(r.durationMs),
      secs(r.phases.copy ?? r.phases.build),
      secs(r.phases.run),
      secs(r.phases.pull),
      r.outcome === 'success' ? '' : r.detail.replace(/\s+/g, ' ').slice(0, 120),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

// One line counting outcomes, e.g. "3 instances: 2 success, 1 crash".
export function countLine(results: InstanceResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  return `${results.length} instance${results.length === 1 ? '' : 's'}: ${[...counts].map(([o, n]) => `${n} ${o}`).join(', ')}`;
}
