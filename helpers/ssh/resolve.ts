// Resolve inventory hosts as the user's OpenSSH would (ssh -G), with their pinned host keys.
import { entryMatches, knownHostsName, loadKnownHosts, type KnownHostEntry } from './known-hosts.ts';
import { resolveSshTarget, type SshTarget } from './ssh-config.ts';
import type { InventoryEntry } from '../runners/entries.ts';

/** A non-localhost entry with how to reach it and the host keys it is pinned to. */
export interface ResolvedHost {
  entry: InventoryEntry;
  /** The alias resolved by `ssh -G`, with the entry's own user and identity file applied. */
  target: SshTarget;
  /** Pinned public host keys as `type base64` lines: the entry's own key, else the known_hosts ones. */
  hostKeys: string[];
}

// The key lines pinned for `target` in known_hosts entries: plain entries for its name, minus revoked keys.
export function pinnedKeys(entries: readonly KnownHostEntry[], target: SshTarget): string[] {
  const name = knownHostsName({ host: target.hostname, port: target.port, hostKeyAlias: target.hostKeyAlias });
  const matching = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e, name));
  const revoked = matching.filter((e) => e.marker === 'revoked');
  const keys = matching
    .filter((e) => e.marker === undefined && !revoked.some((r) => r.key.equals(e.key)))
    .map((e) => `${e.keyType} ${e.key.toString('base64')}`);
  return [...new Set(keys)];
}

// `ssh -G` for the entry's alias, then the entry's user and identity file on top.
export async function targetFor(entry: InventoryEntry, options: { signal?: AbortSignal } = {}): Promise<SshTarget> {
  const target = await resolveSshTarget(entry.name, options);
  return {
    ...target,
    ...(entry.user !== undefined ? { user: entry.user } : {}),
    ...(entry.identityFile !== undefined ? { identityFiles: [entry.identityFile, ...target.identityFiles.filter((f) => f !== entry.identityFile)] } : {}),
  };
}

// Resolve one non-localhost entry; errors (from ssh -G or a known_hosts file) name the host.
export async function resolveHost(entry: InventoryEntry, options: { signal?: AbortSignal } = {}): Promise<ResolvedHost> {
  const target = await targetFor(entry, options);
  if (entry.hostKey !== undefined) return { entry, target, hostKeys: [entry.hostKey] };
  const known = await loadKnownHosts([...target.userKnownHostsFiles, ...target.globalKnownHostsFiles], options);
  return { entry, target, hostKeys: pinnedKeys(known, target) };
}

// Resolve every entry but localhost, in parallel and in order.
export async function resolveHosts(entries: readonly InventoryEntry[], options: { signal?: AbortSignal } = {}): Promise<ResolvedHost[]> {
  return await Promise.all(entries.filter((e) => e.name !== 'localhost').map((e) => resolveHost(e, options)));
}
