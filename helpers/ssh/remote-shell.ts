// What our commands on a remote host may rely on: a PATH that finds Nix, and
// store paths quoted for the remote shell.
import { TgError } from '../shared/error.ts';

// Nix store paths hold no quote, so single-quoting them is safe for the remote shell.
const storePathRe = /^\/nix\/store\/[0-9a-z]{32}-[A-Za-z0-9+._?=-]+$/;

// The remote's nix-store, also where non-interactive shells miss the Nix profile.
export const REMOTE_NIX_PATH = 'PATH="$PATH:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin"';

// A store path (optionally followed by a relative path inside it) quoted for a POSIX shell.
export function quoteStorePath(path: string): string {
  if (!storePathRe.test(path)) throw new TgError('E_COPY', `not a Nix store path: ${JSON.stringify(path)}`);
  return `'${path}'`;
}
