// exec:ts: a TypeScript plan run in place with Node and tsx, with no launcher file.
// For a remote host it becomes one ES module bundle (esbuild, every dependency
// inside) plus this machine's node, both in the local Nix store.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TgError } from '../../shared/error.ts';
import { bundleTs } from '../../shared/bundle-ts.ts';
import { addToStore } from '../../closure/add-to-store.ts';
import type { Component } from '../../closure/job-description.ts';
import { localSystem } from '../../runners/runners.ts';
import { setting, type Artifact, type BuildInput } from './artifact.ts';

const ENTRY_CANDIDATES = ['main.ts', 'index.ts', 'src/main.ts', 'src/index.ts'];

// The plan's entry: `entry` of [builders."exec:ts"], else package.json's main, else main.ts or index.ts.
export function tsEntry(planDir: string, config: Record<string, unknown>): string {
  const configured = setting(config, 'entry', '');
  if (configured) return checkEntry(planDir, configured, '[builders."exec:ts"] entry');
  const manifest = join(planDir, 'package.json');
  const main = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { main?: unknown }).main : undefined;
  if (typeof main === 'string' && /\.(m|c)?[jt]s$/.test(main)) return checkEntry(planDir, main, 'package.json main');
  const found = ENTRY_CANDIDATES.find((c) => existsSync(join(planDir, c)));
  if (!found) throw new TgError('E_BUILD', `exec:ts: ${planDir} has no entry: set [builders."exec:ts"] entry in manifest.toml, or "main" in package.json, or add one of ${ENTRY_CANDIDATES.join(', ')}`);
  return join(planDir, found);
}

function checkEntry(planDir: string, entry: string, where: string): string {
  const path = join(planDir, entry);
  if (!existsSync(path)) throw new TgError('E_BUILD', `exec:ts: ${where} ${JSON.stringify(entry)}: ${path} does not exist`);
  return path;
}

// Run the entry with this node and tsx; bundle it for remote hosts on demand.
export async function buildExecTs(input: BuildInput): Promise<Artifact> {
  const entry = tsEntry(input.planDir, input.config);
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  let bundled: Promise<Component> | undefined;
  return {
    command: process.execPath,
    args: ['--import', tsx, entry],
    source: entry,
    placesItself: false,
    appFor: (system, signal) => {
      if (system !== localSystem()) {
        throw new TgError('E_BUILD', `exec:ts places instances only on hosts of this machine's system (${localSystem()}), and ${system} was asked for: build the plan with nix:generic for other systems`);
      }
      bundled ??= bundle(input, entry, signal);
      return bundled;
    },
  };
}

// `<work>/<plan>-ts/{lib/<plan>.mjs, bin/<plan>}` in the store, needing node's store path.
async function bundle(input: BuildInput, entry: string, signal?: AbortSignal): Promise<Component> {
  const node = await nodeInStore(input.workDir, signal);
  const tree = join(input.workDir, `${input.plan}-ts`);
  await mkdir(join(tree, 'bin'), { recursive: true });
  const module = join(tree, 'lib', `${input.plan}.mjs`);
  await bundleTs(entry, module, input.planDir);
  const wrapper = join(tree, 'bin', input.plan);
  await writeFile(wrapper, `#!/bin/sh\nexec ${node}/bin/node "$(dirname "$0")/../lib/${input.plan}.mjs" "$@"\n`);
  await chmod(wrapper, 0o555);
  return { outPath: await addToStore(tree, signal), entry: `bin/${input.plan}`, requires: [node] };
}

// This machine's node binary as a store path of its own (`nodejs-<version>/bin/node`).
async function nodeInStore(workDir: string, signal?: AbortSignal): Promise<string> {
  const tree = join(workDir, `nodejs-${process.versions.node}`);
  await mkdir(join(tree, 'bin'), { recursive: true });
  await copyFile(process.execPath, join(tree, 'bin', 'node'));
  return addToStore(tree, signal);
}
