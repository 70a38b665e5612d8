// The agent for a Nix system, as a store path that can be copied to a host: the
// binary the package ships for that system (dist/agent/<system>/remote-agent), or
// one built here with Go from the package's go/ module (cached), added to the store.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';
import { layout, packageRoot } from '../shared/package-root.ts';
import { goPlatform, type NixSystem } from '../runners/runners.ts';
import { addToStore } from '../closure/add-to-store.ts';
import type { Component } from '../closure/job-description.ts';

export const AGENT_ENTRY = 'bin/remote-agent';
const made = new Map<NixSystem, Promise<Component>>();

// The agent for `system` in the local store (once per process).
export function agentComponent(system: NixSystem, signal?: AbortSignal): Promise<Component> {
  let pending = made.get(system);
  if (!pending) {
    pending = storeAgent(system, signal);
    made.set(system, pending);
    pending.catch(() => made.delete(system));
  }
  return pending;
}

async function storeAgent(system: NixSystem, signal?: AbortSignal): Promise<Component> {
  const binary = await agentBinary(system, signal);
  const version = (JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  const staging = await mkdtemp(join(tmpdir(), 'remote-agent-'));
  try {
    const tree = join(staging, `remote-agent-${version}-${system}`);
    await mkdir(join(tree, 'bin'), { recursive: true });
    await copyFile(binary, join(tree, AGENT_ENTRY));
    await chmod(join(tree, AGENT_ENTRY), 0o555);
    return { outPath: await addToStore(tree, signal), entry: AGENT_ENTRY };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// A remote-agent binary for `system`: the one the installed package ships, or
// (in the source tree) one built from go/, cached by source and Go version.
export async function agentBinary(system: NixSystem, signal?: AbortSignal): Promise<string> {
  const shipped = join(packageRoot(), 'dist', 'agent', system, 'remote-agent');
  if (layout() !== 'source' && existsSync(shipped)) return shipped;
  const source = join(packageRoot(), 'go');
  if (!existsSync(join(source, 'go.mod'))) throw new TgError('E_BUILD', `no remote-agent for ${system}: the package ships none (${shipped}) and has no Go source to build one (${source})`);
  const goVersion = await execa('go', ['env', 'GOVERSION'], { reject: false, stdin: 'ignore', cancelSignal: signal });
  if (goVersion.failed) throw new TgError('E_BUILD', `building the remote agent for ${system} needs Go (go env GOVERSION: ${goVersion.shortMessage})`);
  const key = await sourceKey(source, goVersion.stdout.trim());
  const out = join(cacheHome(), 'remote-runner', 'agent', key, system, 'remote-agent');
  if (existsSync(out)) return out;
  await mkdir(join(out, '..'), { recursive: true });
  const partial = `${out}.${process.pid}.tmp`;
  const result = await execa('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', partial, './cmd/remote-agent'], {
    cwd: source,
    env: { ...goPlatform(system), CGO_ENABLED: '0', GOFLAGS: '', GOWORK: 'off' },
    reject: false,
    stdin: 'ignore',
    cancelSignal: signal,
  });
  if (result.failed) throw new TgError('E_BUILD', `go build of the remote agent for ${system} exited ${result.exitCode ?? result.signal}: ${tail(result.stderr)}`, { cause: result });
  await rename(partial, out);
  return out;
}

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

// A short hash of the Go sources and the Go version.
async function sourceKey(dir: string, goVersion: string): Promise<string> {
  const hash = createHash('sha256').update(goVersion);
  const walk = async (at: string): Promise<void> => {
    for (const entry of (await readdir(at, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.(go|mod|sum)$/.test(entry.name) && !entry.name.endsWith('_test.go')) hash.update(`${path.slice(dir.length)}\0`).update(await readFile(path));
    }
  };
  await walk(dir);
  return hash.digest('hex').slice(0, 16);
}
