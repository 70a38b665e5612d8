// Build a run's artifact with the builder the run names, or take a prebuilt one.
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { TgError } from '../shared/error.ts';
import { addToStore } from '../closure/add-to-store.ts';
import { JOB_FILE } from '../closure/job-description.ts';
import { localSystem } from '../runners/runners.ts';
import type { Artifact, BuildInput } from './builders/artifact.ts';
import { buildExecGo } from './builders/exec-go.ts';
import { buildExecTs } from './builders/exec-ts.ts';
import { buildNixGeneric } from './builders/nix-generic.ts';
import type { RunSpec } from './spec.ts';

export type { Artifact } from './builders/artifact.ts';

/** How to build. */
export interface BuildOptions {
  signal: AbortSignal;
  /** Scratch space for build products; it lives as long as the run. */
  workDir: string;
  /** Extra `nix build` arguments (nix:generic). */
  nixArgs: string[];
}

// Build `spec`'s artifact, or take `spec.useBuild`.
export async function buildArtifact(spec: RunSpec, options: BuildOptions): Promise<Artifact> {
  await mkdir(options.workDir, { recursive: true });
  const binPath = typeof spec.runCfg.bin_path === 'string' && spec.runCfg.bin_path !== '' ? spec.runCfg.bin_path : undefined;
  if (spec.useBuild) return prebuilt(spec.useBuild, binPath, spec.plan, options);
  const input: BuildInput = { planDir: spec.planDir, plan: spec.plan, config: spec.builderCfg, binPath, workDir: options.workDir, signal: options.signal };
  switch (spec.builder) {
    case 'exec:go':
      return buildExecGo(input);
    case 'exec:ts':
      return buildExecTs(input);
    case 'nix:generic':
      return buildNixGeneric({ ...input, nixArgs: options.nixArgs });
  }
}

// `--use-build`: a Nix output path (as nix:generic gives it) or a program (as exec:go gives it).
async function prebuilt(path: string, binPath: string | undefined, plan: string, options: BuildOptions): Promise<Artifact> {
  if (!existsSync(path)) throw new TgError('E_USAGE', `--use-build ${path}: no such file or directory`);
  if (statSync(path).isFile()) {
    return {
      command: path,
      args: [],
      source: path,
      placesItself: false,
      appFor: async (system, signal) => {
        if (system !== localSystem()) throw new TgError('E_BUILD', `--use-build ${path} is a program for ${localSystem()}; a host of ${system} needs a build for it`);
        const tree = join(options.workDir, `${plan}-prebuilt`);
        await mkdir(join(tree, 'bin'), { recursive: true });
        await copyFile(path, join(tree, 'bin', basename(path)));
        return { outPath: await addToStore(tree, signal), entry: `bin/${basename(path)}` };
      },
    };
  }
  const placesItself = existsSync(join(path, JOB_FILE));
  const entry = binPath ?? (placesItself ? 'bin/remote-runner' : undefined);
  if (!entry) throw new TgError('E_USAGE', `--use-build ${path}: set bin_path (--run-cfg bin_path=bin/<program>) to say which program to run`);
  if (!existsSync(join(path, entry))) throw new TgError('E_BUILD', `--use-build ${path}: ${join(path, entry)} is not an executable file`);
  return {
    command: join(path, entry),
    args: [],
    source: path,
    placesItself,
    appFor: async (system) => {
      if (system !== localSystem() || !path.startsWith('/nix/store/')) throw new TgError('E_BUILD', `--use-build ${path} cannot be placed on a host of ${system}`);
      return { outPath: path, entry };
    },
  };
}
