// Nix for tests: the repository's configuration (nix/nix.conf), with or without
// the experimental features on, and the arguments that build flakes offline.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from './tg-run.ts';

let offline: Promise<string> | undefined;

// The store path of the offline nixpkgs stand-in (prepared once).
export function offlineNixpkgs(): Promise<string> {
  offline ??= execa('bash', ['-c', '. scripts/lib/nix-env.sh && nix_env_offline_nixpkgs'], { cwd: repoRoot, timeout: 600_000 }).then((r) => r.stdout.trim());
  return offline;
}

// Environment for a Nix command: nix/nix.conf, or a copy without `experimental-features`
// (a plain install, where nix-command and flakes are off) written into `dir`.
export async function nixEnv(options: { features: boolean; dir: string }): Promise<Record<string, string>> {
  let conf = join(repoRoot, 'nix', 'nix.conf');
  if (!options.features) {
    const plain = (await readFile(conf, 'utf8')).split('\n').filter((l) => !l.startsWith('experimental-features')).join('\n');
    conf = join(options.dir, 'nix-plain.conf');
    await writeFile(conf, plain);
  }
  return { NIX_USER_CONF_FILES: conf, XDG_CACHE_HOME: join(repoRoot, '.cache', 'xdg') };
}
