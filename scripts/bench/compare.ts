// Comparisons: two sides run alternately, one ratio per pair, the median of the ratios.
import { log, median } from './util.ts';

export interface Goal {
  op: '<=' | '>=';
  value: number;
}

/** One line of the results: both sides' samples, the per-pair ratios and the goal. */
export interface Row {
  id: string;
  what: string;
  /** What the ratio is, e.g. "ours / baseline (time)". */
  ratioIs: string;
  baselineLabel: string;
  oursLabel: string;
  /** Wall times in ms, one per pair, in the order they ran. */
  baseline: number[];
  ours: number[];
  ratios: number[];
  goal: Goal;
  /** Bytes moved per run, for throughput figures. */
  bytes?: number;
  /** Anything the reader should know about this row's runs (failures, retries). */
  remarks: string[];
}

export const ratioOf = (row: Row): number => median(row.ratios);
export const met = (row: Row): boolean => {
  const r = ratioOf(row);
  return row.goal.op === '<=' ? r <= row.goal.value : r >= row.goal.value;
};
export const goalText = (g: Goal): string => `${g.op === '<=' ? '≤' : '≥'} ${g.value}`;

/** A side of a comparison: runs once and resolves with its wall time in ms. */
export type Side = (pair: number) => Promise<number>;

// Run the sides in turn, `pairs` times (A B A B ...); `between` runs after every side
// (untimed), e.g. to reset a store. Resolves with each side's samples.
export async function alternate(label: string, pairs: number, sides: Side[], between?: () => Promise<void>): Promise<number[][]> {
  const samples: number[][] = sides.map(() => []);
  for (let p = 0; p < pairs; p++) {
    for (const [s, side] of sides.entries()) {
      const ms = await side(p);
      samples[s]!.push(ms);
      if (between) await between();
    }
    log(`${label}: pair ${p + 1}/${pairs}: ${samples.map((x) => `${Math.round(x[p]!)} ms`).join(' / ')}`);
  }
  return samples;
}

// Per-pair ratios a/b.
export const pairRatios = (a: number[], b: number[]): number[] => a.map((x, i) => x / b[i]!);
