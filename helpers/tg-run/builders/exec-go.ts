// exec:go as Testground has it: `go build` of the plan's `exec_pkg` (module_path
// for a fresh go.mod), into a work directory; the plan's own go.mod and go.sum
// are never changed. For a remote host, the same build for its GOOS/GOARCH,
// static (CGO_ENABLED=0), enters the local Nix store as its own closure.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { TgError, tail } from '../../shared/error.ts';
import { addToStore } from '../../closure/add-to-store.ts';
import type { Component } from '../../closure/job-description.ts';
import { goPlatform, localSystem, type NixSystem } from '../../runners/runners.ts';
import { setting, type Artifact, type BuildInput } from './artifact.ts';

// Build the plan for this machine, and lazily for any other system.
export async function buildExecGo(input: BuildInput): Promise<Artifact> {
  const built = new Map<NixSystem, Promise<string>>();
  const treeFor = (system: NixSystem) => {
    let pending = built.get(system);
    if (!pending) built.set(system, (pending = goBuild(input, system)));
    return pending;
  };
  const local = await treeFor(localSystem());
  const entry = `bin/${input.plan}`;
  return {
    command: join(local, entry),
    args: [],
    source: join(local, entry),
    placesItself: false,
    appFor: async (system, signal): Promise<Component> => ({ outPath: await addToStore(await treeFor(system), signal), entry }),
  };
}

// `go build` for `system` into `<work>/<plan>-<system>/bin/<plan>`; resolves with that tree.
async function goBuild(input: BuildInput, system: NixSystem): Promise<string> {
  const pkg = setting(input.config, 'exec_pkg', '.');
  const work = join(input.workDir, `exec-go-${system}`);
  const tree = join(work, `${input.plan}-${system}`);
  await mkdir(join(tree, 'bin'), { recursive: true });
  const modfile = await workModfile(input, work);
  const env = { ...goPlatform(system), CGO_ENABLED: '0', GOFLAGS: `-modfile=${modfile} -mod=mod`, GOWORK: 'off' };
  const args = ['build', '-gcflags=all=-N -l', '-o', join(tree, 'bin', input.plan), pkg];
  const result = await execa('go', args, { cwd: input.planDir, env, reject: false, stdin: 'ignore', cancelSignal: input.signal });
  if (result.failed) {
    throw new TgError('E_BUILD', `exec:go: go ${args.join(' ')} for ${system} in ${input.planDir} exited ${result.exitCode ?? result.signal}: ${tail(result.stderr, 8)}`, { cause: result });
  }
  return tree;
}

// A copy of the plan's go.mod and go.sum for the build to update, or a fresh one
// (`fresh_gomod`, or no go.mod) for `module_path`, tidied as Testground does.
async function workModfile(input: BuildInput, work: string): Promise<string> {
  const modfile = join(work, 'go.mod');
  const fresh = input.config.fresh_gomod === true || !existsSync(join(input.planDir, 'go.mod'));
  if (!fresh) {
    await copyFile(join(input.planDir, 'go.mod'), modfile);
    if (existsSync(join(input.planDir, 'go.sum'))) await copyFile(join(input.planDir, 'go.sum'), join(work, 'go.sum'));
    return modfile;
  }
  const modulePath = setting(input.config, 'module_path', '');
  if (!modulePath) throw new TgError('E_MANIFEST', `exec:go: ${input.planDir} has no go.mod, and [builders."exec:go"] module_path is not set`);
  await writeFile(modfile, `module ${modulePath}\n`);
  const tidy = await execa('go', ['mod', 'tidy'], { cwd: input.planDir, env: { GOFLAGS: `-modfile=${modfile}`, GOWORK: 'off' }, reject: false, stdin: 'ignore', cancelSignal: input.signal });
  if (tidy.failed) throw new TgError('E_BUILD', `exec:go: go mod tidy for a fresh go.mod (${modulePath}) exited ${tidy.exitCode}: ${tail(tidy.stderr)}`, { cause: tidy });
  return modfile;
}
