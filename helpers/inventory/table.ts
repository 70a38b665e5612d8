// The `--check` table: one row per runner, in the list's order.
import type { HostCheck } from '../ssh/probe.ts';

const HEADER = ['HOST', 'ARCH', 'SSH', 'NIX', 'SYSTEM', 'STATE', 'DETAIL'];

// Render checks as aligned columns `HOST ARCH SSH NIX SYSTEM STATE DETAIL`, the detail last and unpadded.
export function renderCheckTable(checks: readonly HostCheck[]): string {
  const rows = [HEADER, ...checks.map((c) => [c.name, c.arch, c.ssh, c.nix ?? '-', c.system ?? '-', c.state, c.detail.replace(/\s+/g, ' ')])];
  const widths = HEADER.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ').trimEnd()).join('\n') + '\n';
}
