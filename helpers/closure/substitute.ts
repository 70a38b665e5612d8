// Substituters first: before this machine sends a path, the host fetches from
// its own substituters (a binary cache near it) whatever they have, as
// `nix copy --substitute-on-destination` does. Bounded: a host with no
// substituter, or one that does not answer, costs at most SUBSTITUTE_BOUND_MS.
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';

/** The longest the host may spend asking its substituters. */
export const SUBSTITUTE_BOUND_MS = 60_000;

// Ask the host to substitute `paths`; resolves with those it still lacks afterwards,
// as the same command reports them, or undefined when it gave no answer within
// the bound (never rejects).
export async function substituteOnHost(ssh: SshSession, paths: string[], signal?: AbortSignal): Promise<string[] | undefined> {
  if (paths.length === 0) return [];
  const bound = AbortSignal.timeout(SUBSTITUTE_BOUND_MS);
  const options = '--keep-going --option fallback false --option connect-timeout 5 --option download-attempts 1';
  const quoted = paths.map(quoteStorePath).join(' ');
  // Exit 1 (some path no substituter has) is expected; what is valid afterwards is what counts.
  const result = await ssh
    .run(`${REMOTE_NIX_PATH}; nix-store --realise ${options} ${quoted} >/dev/null 2>&1; exec nix-store --check-validity --print-invalid ${quoted}`, {
      signal: signal ? AbortSignal.any([signal, bound]) : bound,
      maxOutputBytes: 64 * 1024 + paths.reduce((n, p) => n + p.length + 1, 0),
    })
    .catch(() => undefined);
  if (result?.code !== 0) return undefined;
  const invalid = new Set(result.stdout.split('\n').filter(Boolean));
  return paths.filter((p) => invalid.has(p));
}
