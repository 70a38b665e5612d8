// The runner inventory: load `remote-runners` from JSON or a Nix machines file, render it for
// Nix and OpenSSH, and probe which runners are up.
export { loadRunners, toRunner, type InventoryEntry } from '../runners/entries.ts';
export { parseMachinesFile, type MachineExtra, type MachineLine } from '../runners/machines-file.ts';
export { isRunnerFileSpec, readRunnerSource, type RunnerSource } from '../runners/source.ts';
export { resolveHosts, resolveHost, pinnedKeys, type ResolvedHost } from '../ssh/resolve.ts';
export { renderMachines, machineLine } from './render-machines.ts';
export { renderSshConfig, renderKnownHosts } from './render-ssh-config.ts';
export { writeOutDir, type OutDirFiles } from './out-dir.ts';
export { checkRunners, checkHost, nixSystem, judgeProbe, type HostCheck, type CheckOptions } from '../ssh/probe.ts';
export { renderCheckTable } from './table.ts';
export { parseDurationMs } from '../shared/duration.ts';
