// The runner inventory: each runner with what a Nix machines file adds to it.
import { parseRunners, readRunnersFile, type Runner } from './runners.ts';
import type { MachineExtra } from './machines-file.ts';
import { isRunnerFileSpec } from './source.ts';

/** One runner (`name`, `arch`, `build`) and, from a machines file, its user, key, jobs, features and host key. */
export type InventoryEntry = Runner & MachineExtra;

// Load and validate a runner list: inline JSON, `@file` (JSON or a Nix machines file) or `machines:file`.
export async function loadRunners(spec: string): Promise<InventoryEntry[]> {
  if (!isRunnerFileSpec(spec)) return parseRunners(spec);
  const { runners, source } = readRunnersFile(spec);
  return runners.map((runner, i) => ({ ...(source.kind === 'machines' ? source.extras[i] : {}), ...runner }));
}

// The entry as one element of `remote-runners`: name, arch and build only.
export function toRunner(entry: InventoryEntry): Runner {
  return {
    name: entry.name,
    ...(entry.arch !== undefined ? { arch: entry.arch } : {}),
    ...(entry.build !== undefined ? { build: entry.build } : {}),
  };
}
