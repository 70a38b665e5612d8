// The table of ratios printed at the end of a run, and its Markdown form.
import { goalText, met, ratioOf, type Row } from './compare.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

const header = ['id', 'baseline', 'median', 'ours', 'median', 'ratio', 'is', 'goal', 'met'];

// A row without a baseline (B6, B7) measures ours alone: its figure is a value, not a ratio.
const baselineMedian = (row: Row): string => (row.baseline.length === 0 ? '—' : fmtMs(median(row.baseline)));

function cells(row: Row): string[] {
  return [
    row.id,
    row.baselineLabel,
    baselineMedian(row),
    row.oursLabel,
    fmtMs(median(row.ours)),
    fmtRatio(ratioOf(row)),
    row.ratioIs,
    goalText(row.goal),
    met(row) ? 'yes' : 'NO',
  ];
}

// Aligned plain text, for the terminal.
export function textTable(rows: Row[]): string {
  const all = [header, ...rows.map(cells)];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  return all.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

// A Markdown table of the same.
export function markdownTable(rows: Row[]): string {
  const md = ['| id | what | baseline | median | ours | median | ratio (median of pairs) | ratio is | goal | met |', '|---|---|---|---:|---|---:|---:|---|---|---|'];
  for (const row of rows) {
    const c = cells(row);
    md.push(`| ${row.id} | ${row.what} | ${c[1]} | ${c[2]} | ${c[3]} | ${c[4]} | **${c[5]}** | ${c[6]} | ${c[7]} | ${c[8]} |`);
  }
  return md.join('\n');
}

// Every sample, pair by pair, for the record.
export function samplesTable(rows: Row[]): string {
  const md = ['| id | pair | baseline | ours | ratio |', '|---|---:|---:|---:|---:|'];
  for (const row of rows) {
    row.ours.forEach((o, i) => md.push(`| ${row.id} | ${i + 1} | ${row.baseline[i] === undefined ? '—' : fmtMs(row.baseline[i]!)} | ${fmtMs(o)} | ${fmtRatio(row.ratios[i]!)} |`));
  }
  return md.join('\n');
}
