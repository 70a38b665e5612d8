// Write a self-contained SSH and Nix setup for the hosts: `machines`, `ssh_config`, `known_hosts`.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TgError } from '../shared/error.ts';
import { renderMachines } from './render-machines.ts';
import { renderKnownHosts, renderSshConfig } from './render-ssh-config.ts';
import type { ResolvedHost } from '../ssh/resolve.ts';

/** The files `writeOutDir` wrote, as absolute paths. */
export interface OutDirFiles {
  machines: string;
  sshConfig: string;
  knownHosts: string;
}

// Write one file whole: a temp file renamed over it, so a reader never sees half of it.
async function writeWhole(file: string, text: string, signal: AbortSignal | undefined): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(temp, text, { mode: 0o644, ...(signal ? { signal } : {}) });
    await rename(temp, file);
  } catch (error) {
    signal?.throwIfAborted();
    throw new TgError('E_USAGE', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

// Write the three files into `dir` (made if missing); its ssh_config checks host keys against its known_hosts only.
export async function writeOutDir(dir: string, hosts: readonly ResolvedHost[], options: { signal?: AbortSignal } = {}): Promise<OutDirFiles> {
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true });
  } catch (error) {
    throw new TgError('E_USAGE', `--out-dir ${root}: cannot create it: ${(error as Error).message}`, { cause: error });
  }
  const files: OutDirFiles = { machines: join(root, 'machines'), sshConfig: join(root, 'ssh_config'), knownHosts: join(root, 'known_hosts') };
  await writeWhole(files.knownHosts, renderKnownHosts(hosts), options.signal);
  await writeWhole(files.sshConfig, renderSshConfig(hosts, { knownHostsFile: files.knownHosts }), options.signal);
  await writeWhole(files.machines, renderMachines(hosts), options.signal);
  return files;
}
