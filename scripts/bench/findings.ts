// What a run of the benchmarks found, as saved with --results and read by --render.
import type { Plan } from '../bench.ts';
import type { B1Profile } from './b1-overhead.ts';
import type { B2Profile } from './b2-fanout.ts';
import type { LocalTarProfile, PullProfile, PullVariants } from './b3-outputs.ts';
import type { CopyProfile } from './b4-copy.ts';
import type { SyncCpu } from './b5-sync.ts';
import type { ScaleProfile } from './b5-sync-scale.ts';
import type { B6Profile } from './b6-memory.ts';
import type { B7Profile } from './b7-thousand.ts';
import type { Row } from './compare.ts';
import type { ClosureSize } from './lab.ts';
import type { Machine } from './machine.ts';
import type { NetworkFindings } from './report-network.ts';

export interface Findings extends NetworkFindings {
  labUpMs?: number;
  /** What a cold host receives: the app's closure and the agent's. */
  closures?: { app: ClosureSize; agent: ClosureSize };
  b1?: B1Profile;
  b2?: B2Profile;
  b3?: Record<string, PullProfile>;
  b3Local?: LocalTarProfile;
  b3Variants?: PullVariants;
  b4?: CopyProfile;
  b5?: SyncCpu;
  b5p?: ScaleProfile;
  b6?: B6Profile;
  b7?: B7Profile;
}

export interface ReportInput {
  machine: Machine;
  mode: string;
  plan: Plan;
  rows: Row[];
  findings: Findings;
  seconds: number;
  date: string;
  /** The commit the runner was built from. */
  source: string;
}
