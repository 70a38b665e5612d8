// Build a run's artifact: `nix build .#<attr> --json`, or the TypeScript entry as is.
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { TgError, tail } from '../shared/error.ts';
import type { RunSpec } from './spec.ts';

/** What every instance process executes. */
export interface Artifact {
  command: string;
  args: string[];
  /** Where it came from: a store path or the plan directory. */
  source: string;
}

const nixResult = z.array(z.object({ outputs: z.object({ out: z.string() }) })).min(1);

// Extra `nix build` arguments, e.g. an offline `--override-input`, from TG_RUN_NIX_ARGS.
function extraNixArgs(): string[] {
  return (process.env.TG_RUN_NIX_ARGS ?? '').split(/\s+/).filter(Boolean);
}

async function executable(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch (error) {
    throw new TgError('E_BUILD', `${what}: ${path} is not an executable file`, { cause: error });
  }
}

// Build the artifact of `spec`, honouring `bin_path` from the run config.
export async function buildArtifact(spec: RunSpec, signal: AbortSignal): Promise<Artifact> {
  const binPath = String(spec.runCfg.bin_path ?? 'bin/remote-runner');
  if (spec.builder === 'exec:ts') {
    const entry = join(spec.planDir, `${binPath}.js`);
    await executable(entry, 'exec:ts');
    return { command: process.execPath, args: [entry], source: spec.planDir };
  }
  if (spec.useBuild) {
    const command = join(spec.useBuild, binPath);
    await executable(command, `--use-build ${spec.useBuild}`);
    return { command, args: [], source: spec.useBuild };
  }
  const attr = String(spec.builderCfg.attr ?? 'default');
  const args = ['build', '--json', '--no-link', `${spec.planDir}#${attr}`, ...extraNixArgs()];
  const result = await execa('nix', args, { cancelSignal: signal, reject: false, stdin: 'ignore' });
  if (result.isCanceled) throw new TgError('E_ABORTED', `nix build .#${attr}: cancelled`, { cause: signal.reason });
  if (result.failed) {
    throw new TgError('E_BUILD', `nix ${args.join(' ')} failed (exit ${result.exitCode ?? result.signal}): ${tail(result.stderr)}`, { cause: result });
  }
  let out: string;
  try {
    out = nixResult.parse(JSON.parse(result.stdout))[0]!.outputs.out;
  } catch (error) {
    throw new TgError('E_BUILD', `nix build .#${attr}: unexpected --json output: ${result.stdout.slice(0, 200)}`, { cause: error });
  }
  const command = join(out, binPath);
  await executable(command, `nix:generic .#${attr}`);
  return { command, args: [], source: out };
}
