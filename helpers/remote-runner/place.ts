// Put a run's app and the agent on a host: copy their closures (realising them
// here first when needed), or build on the host what this machine cannot build.
import { TgError } from '../shared/error.ts';
import { localSystem } from '../runners/runners.ts';
import type { SshSession } from '../ssh/session.ts';
import { buildRemote } from '../closure/build-remote.ts';
import { needsOnHost, type CopyReport, type Needs } from '../closure/copy.ts';
import type { Component, SystemJob } from '../closure/job-description.ts';
import { locallyValid, realiseLocally } from '../closure/store.ts';

/** What placing a job on one host needs. */
export interface HostPlacement {
  ssh: SshSession;
  alias: string;
  job: SystemJob;
  /** The host's entry says `"build": "remote"`: build the app there. */
  buildOnHost: boolean;
  phase(phase: string): void;
  /** Send what the host lacks (from here, or from a host that holds it). */
  send(needs: Needs): Promise<CopyReport>;
  /** Run a remote build holding one of this machine's copy slots. */
  fromHere<T>(work: () => Promise<T>): Promise<T>;
}

/** Where the app and the agent are on the host. */
export interface Placed {
  app: string;
  agent: string;
}

/** What placing a job on a host did. */
export interface PlaceReport {
  placed: Placed;
  copied?: CopyReport;
  built: string[];
  buildMs: number;
}

type Plan = { how: 'copy' } | { how: 'build'; drvPath: string };

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
    const result = await p.fromHere(() => buildRemote(p.ssh, p.alias, plan.drvPath));
    built.push(`${result.outPath} from ${plan.drvPath}`);
    if (i === 0) placed.app = result.outPath;
    else placed.agent = result.outPath;
  }
  const buildMs = Math.round(performance.now() - started);
  const roots = [...(plans[0]!.how === 'copy' ? [app.outPath, ...(app.requires ?? [])] : []), ...(plans[1]!.how === 'copy' ? [agent.outPath] : [])];
  if (roots.length === 0) return { placed, built, buildMs };
  p.phase('asking the host what it lacks');
  const needs = await needsOnHost(p.ssh, p.alias, roots);
  const copied = await p.send(needs);
  return { placed, copied, built, buildMs };
}
