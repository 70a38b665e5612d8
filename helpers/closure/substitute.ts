// Substituters first: before this machine sends a path, the host fetches from
// its own substituters (a binary cache near it) whatever they have, as
// `nix copy --substitute-on-destination` does. Bounded: a host with no
// substituter, or one that does not answer, costs at most SUBSTITUTE_BOUND_MS.
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';

/** The longest the host may spend asking its substituters. */
export const SUBSTITUTE_BOUND_MS = 60_000;

// Ask the host to substitute `paths`; resolves once it is done or the bound is reached (never rejects).
export async function substituteOnHost(ssh: SshSession, paths: string[], signal?: AbortSignal): Promise<void> {
  if (paths.length === 0) return;
  const bound = AbortSignal.timeout(SUBSTITUTE_BOUND_MS);
  const options = '--keep-going --option fallback false --option connect-timeout 5 --option download-attempts 1';
  // Exit 1 (some path no substituter has) is expected; what is valid afterwards is what counts.
  await ssh.run(`${REMOTE_NIX_PATH}; exec nix-store --realise ${options} ${paths.map(quoteStorePath).join(' ')} >/dev/null`, {
    signal: signal ? AbortSignal.any([signal, bound]) : bound,
    maxOutputBytes: 64 * 1024,
  }).catch(() => undefined);
}
