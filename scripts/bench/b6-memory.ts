// B6: the memory this machine spends per remote instance. N instances of go-plan's
// `sleep` on 4 lab hosts, run by tg-run two ways: as the runner itself (exec:go, the
// fleet in tg-run's process) and through the Nix artifact (a Go remote-runner per
// instance, which hands its instance to the run's one controller). The figure is the
// sum of the resident sets of every process on this machine's side of the run,
// sampled at its peak while every instance runs, divided by N.
import type { Row } from './compare.ts';
import type { GoPlan } from './go-plan.ts';
import { labUp, type Build } from './lab.ts';
import type { RunMemory } from './run-sampler.ts';
import { runTgRun } from './tg-run.ts';
import { log, tempDir } from './util.ts';

export type B6Path = 'fleet' | 'per-instance';

/** One run of one path. */
export interface B6Run {
  ms: number;
  succeeded: number;
  memory: RunMemory;
}

/** Every run of both paths, for the report. */
export interface B6Profile {
  instances: number;
  sleepSecs: number;
  runs: Record<B6Path, B6Run[]>;
  /** Whether every run had fresh hosts (empty stores). */
  fresh: boolean;
  /** tg-run as the runner once more on the hosts of its last run, which hold the app and the agent: nothing to copy. */
  warm?: B6Run;
}

export const B6_GOALS: Record<B6Path, number> = { fleet: 2, 'per-instance': 15 };
const B6_IDS: Record<B6Path, string> = { fleet: 'B6 tg-run', 'per-instance': 'B6 remote-runner' };

// Megabytes (10^6 bytes) per instance at the controller side's peak.
export const perInstanceMB = (run: B6Run, instances: number): number => ((run.memory.peak?.totalKiB ?? Number.NaN) * 1024) / 1e6 / instances;

// The lab's hosts as a remote-runners param.
export const runnersParam = (hosts: string[]): string => `remote-runners=${JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })))}`;

// One tg-run of go-plan's `sleep` on fresh hosts (or on the hosts as they are), one way or the other.
async function runOnce(build: Build, plan: GoPlan, path: B6Path, instances: number, sleepSecs: number, hosts: string[], fresh: boolean): Promise<B6Run> {
  if (fresh) await labUp(hosts.length);
  const outputs = await tempDir('b6');
  const how = path === 'fleet' ? ['--builder', 'exec:go'] : ['--use-build', plan.artifact];
  const args = ['single', '--plan', plan.dir, '--testcase', 'sleep', '--instances', String(instances), ...how, '--outputs-dir', outputs, '--timeout', '300s', '--test-param', runnersParam(hosts), '--test-param', `sleep_secs=${sleepSecs}`];
  const r = await runTgRun({ tgRun: `${build.tools}/bin/tg-run`, args, env: plan.env, hosts, instances, boundMs: 360_000 });
  if (r.succeeded !== instances) throw new Error(`B6 (${path}): ${r.succeeded} of ${instances} instances succeeded (exit ${r.exitCode}${r.stopped ? `, stopped: ${r.stopped}` : ''}):\n${r.summary}`);
  return { ms: r.ms, succeeded: r.succeeded, memory: r.memory };
}

export async function benchMemory(
  build: Build,
  plan: GoPlan,
  o: { instances: number; runs: number; sleepSecs: number; hosts: string[]; warm: boolean; fresh: boolean },
): Promise<{ rows: Row[]; profile: B6Profile }> {
  const runs: Record<B6Path, B6Run[]> = { fleet: [], 'per-instance': [] };
  let warm: B6Run | undefined;
  for (let i = 0; i < o.runs; i++) {
    // The per-instance way first, so that the last run leaves the fleet's hosts for the warm run.
    for (const path of ['per-instance', 'fleet'] as const) {
      const run = await runOnce(build, plan, path, o.instances, o.sleepSecs, o.hosts, o.fresh);
      runs[path].push(run);
      log(`B6 ${path}, run ${i + 1}/${o.runs}: ${perInstanceMB(run, o.instances).toFixed(2)} MB per instance (${Math.round(run.ms)} ms)`);
    }
  }
  if (o.warm) {
    warm = await runOnce(build, plan, 'fleet', o.instances, o.sleepSecs, o.hosts, false);
    log(`B6 fleet on warm hosts: ${perInstanceMB(warm, o.instances).toFixed(2)} MB per instance`);
  }
  const rows = (['fleet', 'per-instance'] as const).map((path): Row => {
    const remarks = runs[path].filter((r) => !r.memory.allRunning).map((r) => `only ${r.memory.maxAlive} of ${o.instances} apps were seen alive at once in one run; its figure is at that point`);
    return {
      id: B6_IDS[path],
      what: `this machine's RSS per instance, ${o.instances} instances on ${o.hosts.length} hosts, ${path === 'fleet' ? 'tg-run as the runner (exec:go)' : 'a Go remote-runner per instance and the run\'s controller (Nix artifact)'}`,
      ratioIs: 'MB of RSS per instance',
      baselineLabel: '—',
      oursLabel: path === 'fleet' ? 'tg-run (exec:go)' : 'tg-run --use-build <Nix artifact>',
      baseline: [],
      ours: runs[path].map((r) => r.ms),
      ratios: runs[path].map((r) => perInstanceMB(r, o.instances)),
      goal: { op: '<=', value: B6_GOALS[path] },
      remarks,
    };
  });
  return { rows, profile: { instances: o.instances, sleepSecs: o.sleepSecs, runs, fresh: o.fresh, ...(warm ? { warm } : {}) } };
}
