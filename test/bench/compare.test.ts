// The benchmark's statistics and table: sides alternate, ratios are per pair, the
// figure is their median, and goals read both ways.
import { describe, expect, it } from 'vitest';
import { alternate, met, pairRatios, ratioOf, type Row } from '../../scripts/bench/compare.ts';
import { textTable } from '../../scripts/bench/table.ts';
import { median } from '../../scripts/bench/util.ts';

const row = (over: Partial<Row>): Row => ({
  id: 'X', what: 'x', ratioIs: 'ours / baseline (time)', baselineLabel: 'base', oursLabel: 'ours',
  baseline: [100, 100, 100], ours: [50, 60, 200], ratios: [0.5, 0.6, 2], goal: { op: '<=', value: 0.6 }, remarks: [], ...over,
});

describe('bench statistics', () => {
  it('runs the sides alternately, A B A B', async () => {
    const order: string[] = [];
    const samples = await alternate('t', 2, [async (p) => (order.push(`A${p}`), 1), async (p) => (order.push(`B${p}`), 2)]);
    expect(order).toEqual(['A0', 'B0', 'A1', 'B1']);
    expect(samples).toEqual([[1, 1], [2, 2]]);
  });

  it('quotes the median of the per-pair ratios, not the ratio of the medians', () => {
    const r = row({ ratios: pairRatios([50, 60, 200], [100, 100, 100]) });
    expect(r.ratios).toEqual([0.5, 0.6, 2]);
    expect(ratioOf(r)).toBe(0.6);
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });

  it('checks goals in both directions', () => {
    expect(met(row({}))).toBe(true);
    expect(met(row({ goal: { op: '<=', value: 0.5 } }))).toBe(false);
    expect(met(row({ goal: { op: '>=', value: 0.6 } }))).toBe(true);
  });

  it('prints one aligned line per row after the header', () => {
    const lines = textTable([row({}), row({ id: 'Y', goal: { op: '>=', value: 2 } })]).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^id\s+baseline\s+median\s+ours\s+median\s+ratio/);
    expect(lines[1]).toMatch(/^X .* 0\.60 .* ≤ 0\.6\s+yes$/);
    expect(lines[2]).toMatch(/^Y .* ≥ 2\s+NO$/);
  });
});
