// B7: many instances of a trivial Go app (go-plan's `sleep`) on 4 lab hosts in one
// tg-run, tg-run as the runner (exec:go): every instance must succeed. Measured: the
// wall time, this machine's resident set per instance, and each host's (its agent
// and its apps) per instance there, at their peak while every instance runs.
import type { Row } from './compare.ts';
import { runnersParam } from './b6-memory.ts';
import type { GoPlan } from './go-plan.ts';
import { labUp, type Build } from './lab.ts';
import type { RunMemory } from './run-sampler.ts';
import { phaseMedians, runTgRun } from './tg-run.ts';
import { log, tempDir } from './util.ts';

/** The run, for the report. */
export interface B7Profile {
  instances: number;
  sleepSecs: number;
  boundMs: number;
  /** Whether the run had fresh hosts (empty stores). */
  fresh: boolean;
  ms: number;
  succeeded: number;
  exitCode: number | undefined;
  stopped?: 'time' | 'memory';
  /** The least memory the machine had available during the run, in MB. */
  minAvailableMB: number;
  /** Busy and total CPU seconds of the machine during the run. */
  cpuBusyS: number;
  capacityS: number;
  /** Per-instance medians from tg-run's summary (duration, copy, run, pull), in ms. */
  phases: Record<string, number>;
  /** tg-run's outcome count line. */
  counts: string;
  memory: RunMemory;
}

export async function benchThousand(
  build: Build,
  plan: GoPlan,
  o: { instances: number; sleepSecs: number; boundMs: number; hosts: string[]; fresh: boolean },
): Promise<{ row: Row; profile: B7Profile }> {
  if (o.fresh) await labUp(o.hosts.length);
  const outputs = await tempDir('b7');
  const boundS = Math.round(o.boundMs / 1000);
  const args = [
    'single', '--plan', plan.dir, '--testcase', 'sleep', '--instances', String(o.instances), '--builder', 'exec:go', '--outputs-dir', outputs,
    '--timeout', `${boundS}s`, '--test-param', runnersParam(o.hosts), '--test-param', `sleep_secs=${o.sleepSecs}`,
  ];
  log(`B7: ${o.instances} instances on ${o.hosts.length} hosts, bounded at ${boundS} s`);
  // tg-run's own --timeout stops the instances at the bound and still reports; the harness's bound is the backstop.
  const r = await runTgRun({ tgRun: `${build.tools}/bin/tg-run`, args, env: plan.env, hosts: o.hosts, instances: o.instances, boundMs: o.boundMs + 60_000, scanEvery: 4 });
  const counts = /^\d+ instances?: .*$/m.exec(r.stdout)?.[0] ?? `no count line (exit ${r.exitCode})`;
  // tg-run's --timeout gives the instances it stopped the outcome `timeout`.
  const stopped = r.stopped ?? (/\d+ timeout/.test(counts) ? ('time' as const) : undefined);
  log(`B7: ${counts}, ${Math.round(r.ms)} ms`);
  const remarks: string[] = [];
  if (stopped === 'time') remarks.push(`stopped at the bound of ${boundS} s`);
  if (stopped === 'memory') remarks.push(`stopped when the machine had less than 2 GB of memory left`);
  if (r.succeeded < o.instances) remarks.push(`${r.succeeded} of ${o.instances} instances succeeded: ${counts}`);
  if (!r.memory.allRunning) remarks.push(`only ${r.memory.maxAlive} of ${o.instances} apps were seen alive at once; the memory figures are at that point`);
  const row: Row = {
    id: 'B7',
    what: `${o.instances.toLocaleString('en-US')} instances of a trivial Go app on ${o.hosts.length} hosts in one tg-run (exec:go)`,
    ratioIs: 'share of instances that succeeded',
    baselineLabel: '—',
    oursLabel: 'tg-run (exec:go)',
    baseline: [],
    ours: [r.ms],
    ratios: [r.succeeded / o.instances],
    goal: { op: '>=', value: 1 },
    remarks,
  };
  return {
    row,
    profile: {
      instances: o.instances,
      sleepSecs: o.sleepSecs,
      boundMs: o.boundMs,
      fresh: o.fresh,
      ms: r.ms,
      succeeded: r.succeeded,
      exitCode: r.exitCode,
      ...(stopped ? { stopped } : {}),
      minAvailableMB: r.minAvailableMB,
      cpuBusyS: r.cpuBusyS,
      capacityS: r.capacityS,
      phases: phaseMedians(r.summary),
      counts,
      memory: r.memory,
    },
  };
}
