// Small readers shared by the report's sections: rows by id, throughputs, and B1's parts.
import type { B1Profile } from './b1-overhead.ts';
import type { Row } from './compare.ts';
import type { Findings } from './findings.ts';
import { fmtMs, median } from './util.ts';

export const byId = (rows: Row[], id: string): Row | undefined => rows.find((r) => r.id === id);
export const mbps = (row: Row | undefined, which: 'baseline' | 'ours'): string =>
  row?.bytes ? `${(row.bytes / 1e6 / (median(row[which]) / 1000)).toFixed(0)} MB/s` : 'n/a';

export const pct = (a: number, b: number): string => `${Math.round((100 * a) / b)}%`;
export const ms0 = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? 'n/a' : fmtMs(ms));

// A part of B1's profile by the start of its label.
export function part(b1: B1Profile, prefix: string): number | undefined {
  const key = Object.keys(b1.parts).find((k) => k.startsWith(prefix));
  return key === undefined ? undefined : b1.parts[key];
}

// The app's own time: measured alone on the host, or else the baseline's ssh step minus a bare connection.
export function appAlone(b1: B1Profile): number | undefined {
  const direct = part(b1, 'remote: the app');
  if (direct !== undefined) return direct;
  const run = b1.baselineSteps.run;
  const ssh = part(b1, 'OpenSSH: ssh host true');
  return run !== undefined && ssh !== undefined ? Math.max(run - ssh, 0) : undefined;
}

// True when the build already sets TCP_NODELAY: the exec round trip shows no delayed ACK.
export const nagleFixed = (b1: B1Profile): boolean => b1.noDelay.now.roundTrip < 15;

// One SSH stream's rate alone (B4's `OpenSSH cat` stage), in MB/s.
export function sshStream(f: Findings): number | undefined {
  const stages = f.b4?.stages ?? {};
  const key = Object.keys(stages).find((k) => k.startsWith('OpenSSH cat'));
  return key ? stages[key] : undefined;
}
