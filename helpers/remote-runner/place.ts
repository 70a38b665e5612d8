// Put an instance's app and the agent on its host, once per host per run: copy
// their closures (realising them here first when needed), or build on the host
// what this machine cannot build.
import { basename } from 'node:path';
import { TgError } from '../shared/error.ts';
import { intParam } from '../runenv/getters.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { localSystem } from '../runners/runners.ts';
import type { SshSession } from '../ssh/session.ts';
import type { RunScope, SyncClient } from '../sync-service/client.ts';
import { buildRemote } from '../closure/build-remote.ts';
import { DEFAULT_MAX_COPIES, MAX_COPIES_PARAM, withCopySlot } from '../closure/copy-slots.ts';
import { copyClosure, type CopyReport } from '../closure/copy.ts';
import type { Component, SystemJob } from '../closure/job-description.ts';
import { oncePerRun } from '../closure/once-per-run.ts';
import { locallyValid, realiseLocally } from '../closure/store.ts';
import { byteMeter, type Progress } from './progress.ts';

/** What placing a job on one host needs. */
export interface HostPlacement {
  ssh: SshSession;
  alias: string;
  job: SystemJob;
  /** The host's entry says `"build": "remote"`: build the app there. */
  buildOnHost: boolean;
  phase(phase: string): void;
}

/** Inputs of placeJob: one instance's placement, coordinated with the run's others. */
export interface Placement extends HostPlacement {
  runenv: RunEnv;
  client: SyncClient;
  progress: Progress;
  /** Aborted when the instance is stopped: it stops waiting for another instance or a copy slot. */
  signal?: AbortSignal;
}

/** Where the app and the agent are on the host. */
export interface Placed {
  app: string;
  agent: string;
}

/** What placing a job on a host did (and what every instance of the run learns of it). */
export interface PlaceReport {
  placed: Placed;
  copied?: CopyReport;
  built: string[];
  buildMs: number;
}

type Plan = { how: 'copy' } | { how: 'build'; drvPath: string };

// The run's bound on concurrent copies, from its param.
function maxCopies(runenv: RunEnv): number {
  const max = intParam(runenv, MAX_COPIES_PARAM, DEFAULT_MAX_COPIES);
  if (max < 1) throw new TgError('E_PARAM', `param ${MAX_COPIES_PARAM}: expected at least 1, got ${max}`);
  return max;
}

// Copy `c` from here (realising it here first if need be), or build it on the host.
async function planFor(c: Component, what: string, system: string, buildOnHost: boolean): Promise<Plan> {
  if (buildOnHost && c.drvPath) return { how: 'build', drvPath: c.drvPath };
  if (await locallyValid(c.outPath)) return { how: 'copy' };
  if (!c.drvPath) throw new TgError('E_BUILD', `the ${what} ${c.outPath} is not in the local store, and the job description names no derivation that builds it`);
  if (system !== localSystem() && what === 'app') return { how: 'build', drvPath: c.drvPath };
  try {
    await realiseLocally(c.drvPath);
    return { how: 'copy' };
  } catch (error) {
    if (system === localSystem()) throw error;
    return { how: 'build', drvPath: c.drvPath };
  }
}

// Place the job on the host: builds on the host first, then one copy of everything else.
export async function placeOnHost(p: HostPlacement): Promise<PlaceReport> {
  const { app, agent } = p.job;
  const plans = [await planFor(app, 'app', p.job.system, p.buildOnHost), await planFor(agent, 'agent', p.job.system, false)];
  const placed: Placed = { app: app.outPath, agent: agent.outPath };
  const built: string[] = [];
  const started = performance.now();
  for (const [i, plan] of plans.entries()) {
    if (plan.how !== 'build') continue;
    p.phase(`building the ${i === 0 ? 'app' : 'agent'} on the host`);
    const result = await buildRemote(p.ssh, p.alias, plan.drvPath);
    built.push(`${result.outPath} from ${plan.drvPath}`);
    if (i === 0) placed.app = result.outPath;
    else placed.agent = result.outPath;
  }
  const buildMs = Math.round(performance.now() - started);
  const roots = [...(plans[0]!.how === 'copy' ? [app.outPath, ...(app.requires ?? [])] : []), ...(plans[1]!.how === 'copy' ? [agent.outPath] : [])];
  if (roots.length === 0) return { placed, built, buildMs };
  p.phase('copying the closure');
  const onBytes = byteMeter(`remote-runner: ${p.alias} (${p.job.system}): copying`);
  const copied = await copyClosure(p.ssh, p.alias, roots, { onBytes });
  return { placed, copied, built, buildMs };
}

// Place the job on the host, once per host per run; the others wait for the result.
export async function placeJob(p: Placement): Promise<Placed> {
  const scope: RunScope = { run: p.runenv.run, plan: p.runenv.plan, testCase: p.runenv.testCase };
  const key = `place:${p.alias}:${basename(p.job.app.outPath)}:${basename(p.job.agent.outPath)}${p.buildOnHost ? ':build' : ''}`;
  p.phase('copying the closure');
  const waiting = p.signal ? { signal: p.signal } : {};
  const done = await oncePerRun(p.client, scope, key, () => withCopySlot(p.client, scope, maxCopies(p.runenv), () => placeOnHost(p), waiting), waiting);
  const { value, leader } = done;
  if (value.built.length > 0) {
    p.progress.report('build', {
      ms: value.buildMs,
      note: leader ? `built ${value.built.join(', ')} on the host` : 'built by another instance of this run',
    });
  }
  if (value.copied) {
    const c = value.copied;
    p.progress.report('copy', {
      ms: c.ms,
      bytes: leader ? c.bytes : 0,
      paths: leader ? c.missing : 0,
      note: !leader ? 'copied by another instance of this run' : c.missing === 0 ? `all ${c.closure} paths already present` : `of ${c.closure} in the closure`,
    });
  }
  return value.placed;
}
