// When a run names remote hosts and its artifact does not place its own
// instances, tg-run does what a Nix artifact's job description would: it puts
// the app and the agent for each host's system into the local store, writes a
// job description, and starts every instance through the remote runner.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentComponent } from '../agent/binary.ts';
import { runnerParams } from '../choose-server/choose.ts';
import { JOB_VERSION, type JobDescription } from '../closure/job-description.ts';
import { localSystem, type NixSystem } from '../runners/runners.ts';
import { layout, packageRoot } from '../shared/package-root.ts';
import type { Artifact } from './builders/artifact.ts';
import type { RunSpec } from './spec.ts';

/** What every instance starts instead of the artifact, and the job it carries. */
export interface Placing {
  command: string;
  args: string[];
  jobFile: string;
  description: JobDescription;
}

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

// The remote runner's entry, from the same layout as this code.
export function runnerEntry(): string {
  const root = packageRoot();
  switch (layout()) {
    case 'source':
      return join(root, 'bin', 'remote-runner.js');
    case 'built':
      return join(root, 'dist', 'bin', 'remote-runner.js');
    case 'bundle':
      return join(root, 'dist', 'remote-runner.mjs');
  }
}

// Prepare placement for a run with remote hosts; undefined when instances run the artifact as it is.
export async function preparePlacement(spec: RunSpec, artifact: Artifact, workDir: string, signal: AbortSignal): Promise<Placing | undefined> {
  const systems = hostSystems(spec);
  if (artifact.placesItself || !systems) return undefined;
  const description: JobDescription = { version: JOB_VERSION, plan: spec.plan, systems: {} };
  for (const system of [...systems].sort()) {
    const [app, agent] = await Promise.all([artifact.appFor(system, signal), agentComponent(system, signal)]);
    description.systems[system] = { app, agent };
  }
  const jobFile = join(workDir, 'job.json');
  await writeFile(jobFile, `${JSON.stringify(description, null, 2)}\n`);
  return { command: process.execPath, args: [runnerEntry(), '--job', jobFile], jobFile, description };
}
