// Where a run's instances go. When the artifact is a runner of its own (a Nix
// artifact with a job description), every instance starts it, as Testground
// would. Otherwise tg-run is the runner: when a host other than localhost is
// named, it puts the app for each host's system and the agent into the local
// Nix store and places the instances itself (the fleet).
import { agentComponent } from '../agent/binary.ts';
import { pickIndex, runnerParams } from '../choose-server/choose.ts';
import { JOB_VERSION, type JobDescription } from '../closure/job-description.ts';
import { localSystem, type NixSystem, type Runner } from '../runners/runners.ts';
import type { Artifact } from './builders/artifact.ts';
import type { RunSpec } from './spec.ts';

// The systems the run's hosts have, when any host is not localhost; undefined otherwise.
export function hostSystems(spec: RunSpec): Set<NixSystem> | undefined {
  const systems = new Set<NixSystem>();
  let remote = false;
  for (const group of spec.groups) {
    for (const runner of runnerParams({ params: group.params }).runners) {
      if (runner.name !== 'localhost') remote = true;
      systems.add(runner.arch ?? localSystem());
    }
  }
  return remote ? systems : undefined;
}

// The job description tg-run places a run's instances with: undefined when the
// artifact places its own instances, or when every host is localhost.
export async function jobDescriptionFor(spec: RunSpec, artifact: Artifact, signal: AbortSignal): Promise<JobDescription | undefined> {
  const systems = hostSystems(spec);
  if (artifact.placesItself || !systems) return undefined;
  const description: JobDescription = { version: JOB_VERSION, plan: spec.plan, systems: {} };
  for (const system of [...systems].sort()) {
    const [app, agent] = await Promise.all([artifact.appFor(system, signal), agentComponent(system, signal)]);
    description.systems[system] = { app, agent };
  }
  return description;
}

/** The runner each instance of the run goes to, in sign-up order (group by group). */
export function runnerOf(spec: RunSpec): (group: RunSpec['groups'][number], seq: number) => Runner {
  const lists = new Map(spec.groups.map((group) => [group, runnerParams({ params: group.params })]));
  return (group, seq) => {
    const { runners, overflow } = lists.get(group)!;
    return runners[pickIndex(seq, runners.length, overflow)]!;
  };
}
