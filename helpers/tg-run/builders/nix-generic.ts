// nix:generic: `nix build <plan>#<attr> --json`, with the Nix features it needs
// turned on here. An artifact made by lib.testgroundPlan (bin/remote-runner and
// its job description) places its own instances; any other derivation is an app.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { TgError, tail } from '../../shared/error.ts';
import { JOB_FILE, type Component } from '../../closure/job-description.ts';
import { localSystem } from '../../runners/runners.ts';
import { setting, type Artifact, type BuildInput } from './artifact.ts';

/** Turned on for this one command, whatever nix.conf says. */
export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

const nixResult = z.array(z.object({ drvPath: z.string(), outputs: z.object({ out: z.string() }) })).min(1);

// Extra `nix build` arguments: TG_RUN_NIX_ARGS, then --nix-args.
export function nixArgs(extra: string | undefined): string[] {
  return [process.env.TG_RUN_NIX_ARGS ?? '', extra ?? ''].flatMap((s) => s.split(/\s+/)).filter(Boolean);
}

// What to tell a user whose build could not fetch an input.
function offlineHint(stderr: string): string {
  if (!/unable to download|resolve host|cannot fetch|Failed to connect|Network is unreachable/i.test(stderr)) return '';
  return (
    '\nnix could not fetch a flake input: this machine seems to be offline. To build offline, point the input at a local copy, e.g.\n' +
    "  tg-run ... --nix-args='--override-input nixpkgs path:/path/to/nixpkgs'   (or set TG_RUN_NIX_ARGS)\n" +
    'or run once with network so the inputs are in the Nix store, then add --offline.'
  );
}

// Build the flake output the manifest names (attr, default `default`).
export async function buildNixGeneric(input: BuildInput & { nixArgs: string[] }): Promise<Artifact> {
  const attr = setting(input.config, 'attr', 'default');
  const args = [...NIX_FEATURES, 'build', '--json', '--no-link', `${input.planDir}#${attr}`, ...input.nixArgs];
  const result = await execa('nix', args, { cancelSignal: input.signal, reject: false, stdin: 'ignore' });
  if (result.isCanceled) throw new TgError('E_ABORTED', `nix build .#${attr}: cancelled`, { cause: input.signal.reason });
  if (result.failed) {
    throw new TgError('E_BUILD', `nix build ${input.planDir}#${attr} failed (exit ${result.exitCode ?? result.signal}): ${tail(result.stderr)}${offlineHint(result.stderr)}`, { cause: result });
  }
  let built: z.output<typeof nixResult>[number];
  try {
    built = nixResult.parse(JSON.parse(result.stdout))[0]!;
  } catch (error) {
    throw new TgError('E_BUILD', `nix build .#${attr}: unexpected --json output: ${result.stdout.slice(0, 200)}`, { cause: error });
  }
  const out = built.outputs.out;
  const placesItself = existsSync(join(out, JOB_FILE));
  const entry = input.binPath ?? (placesItself ? 'bin/remote-runner' : soleProgram(out, attr));
  const app: Component = { outPath: out, drvPath: built.drvPath, entry };
  return {
    command: join(out, entry),
    args: [],
    source: out,
    placesItself,
    appFor: async (system) => {
      if (system !== localSystem()) {
        throw new TgError('E_BUILD', `nix:generic .#${attr} is built for ${localSystem()} only, and a host of ${system} was asked for: make the flake's package with lib.testgroundPlan to place instances on other systems`);
      }
      return app;
    },
  };
}

// The one program in `<out>/bin`, the default bin_path of a plain derivation.
function soleProgram(out: string, attr: string): string {
  const programs = existsSync(join(out, 'bin')) ? readdirSync(join(out, 'bin')) : [];
  if (programs.length === 1) return `bin/${programs[0]}`;
  throw new TgError('E_BUILD', `nix:generic .#${attr}: ${out}/bin holds ${programs.length === 0 ? 'no program' : `${programs.length} programs (${programs.join(', ')})`}; set bin_path in [runners."local:exec"] (or --run-cfg bin_path=...)`);
}
