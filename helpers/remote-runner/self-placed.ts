// A job description for a program that hands itself to the runner (a Go plan
// calling place.Elsewhere under Testground's local:exec): the program as this
// system's app, put into the local store, and the agent for this system.
import { access, constants, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { agentComponent } from '../agent/binary.ts';
import { addToStore } from '../closure/add-to-store.ts';
import { JOB_VERSION, type JobDescription } from '../closure/job-description.ts';
import { localSystem } from '../runners/runners.ts';
import { TgError } from '../shared/error.ts';

/** Starts the name (argv[0]) of every app the runner runs: a self-placing plan (the Go package place) then knows it is placed. */
export const PLACED_PREFIX = 'remote-runner-placed:';

// The argv[0] the runner gives `program`.
export function placedName(program: string): string {
  return `${PLACED_PREFIX}${program}`;
}

// The job for `program`: it runs on hosts of this machine's system only.
export async function jobForProgram(program: string, signal?: AbortSignal): Promise<{ description: JobDescription; name: string }> {
  try {
    await access(program, constants.X_OK);
  } catch (error) {
    throw new TgError('E_USAGE', `--app ${program}: not an executable file`, { cause: error });
  }
  const name = basename(program).replace(/[^A-Za-z0-9+._?=-]/g, '_');
  const staging = await mkdtemp(join(tmpdir(), 'remote-runner-app-'));
  try {
    await mkdir(join(staging, name, 'bin'), { recursive: true });
    await copyFile(program, join(staging, name, 'bin', name));
    const system = localSystem();
    const [outPath, agent] = await Promise.all([addToStore(join(staging, name), signal), agentComponent(system, signal)]);
    const description: JobDescription = { version: JOB_VERSION, plan: name, systems: { [system]: { app: { outPath, entry: `bin/${name}` }, agent } } };
    return { description, name: `the job for ${program}` };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
