// OpenSSH known_hosts files: parse them, and decide whether a host key is the pinned one.
// Unknown and changed keys are never accepted: there is no trust on first use here.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { keyTypeOf } from '../shared/ssh-key.ts';

/** One key line of a known_hosts file (markers `@revoked` and `@cert-authority` kept). */
export interface KnownHostEntry {
  file: string;
  line: number;
  marker: 'revoked' | 'cert-authority' | undefined;
  /** Plain host patterns (lowercase, `!` for negation), or the salt and hash of a hashed entry. */
  hosts: { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };
  /** The key type the blob itself names (e.g. `ssh-ed25519`). */
  keyType: string;
  /** The raw SSH public key blob (the base64-decoded third field). */
  key: Buffer;
}

/** What a host is looked up by: its HostKeyAlias if set, else its host name and port. */
export interface HostKeyLookup {
  host: string;
  port: number;
  hostKeyAlias?: string | undefined;
}

/** The verdict on a presented host key; `entry` is the line that refused it, where one did. */
export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; entry?: KnownHostEntry };

const base64Field = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64');
const hashedField = z.string().regex(/^\|1\|[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]+={0,2}$/, 'expected |1|salt|hash');

// Parse the text of one known_hosts file; lines that are not valid key lines are skipped, as ssh does.
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else return;
      fields.shift();
    }
    const [hostField, typeField, keyField] = fields;
    if (hostField === undefined || typeField === undefined || !base64Field.safeParse(keyField).success) return;
    const key = Buffer.from(keyField!, 'base64');
    const keyType = keyTypeOf(key);
    if (keyType === undefined || keyType !== typeField) return;
    let hosts: KnownHostEntry['hosts'];
    if (hostField.startsWith('|')) {
      if (!hashedField.safeParse(hostField).success) return;
      const [, , salt, hash] = hostField.split('|');
      hosts = { kind: 'hashed', salt: Buffer.from(salt!, 'base64'), hash: Buffer.from(hash!, 'base64') };
    } else {
      hosts = { kind: 'patterns', patterns: hostField.toLowerCase().split(',').filter(Boolean) };
    }
    entries.push({ file, line: index + 1, marker, hosts, keyType, key });
  });
  return entries;
}

// Read and parse known_hosts files in order; a file that does not exist holds no entries.
export async function loadKnownHosts(files: readonly string[], options: { signal?: AbortSignal } = {}): Promise<KnownHostEntry[]> {
  const entries: KnownHostEntry[] = [];
  for (const file of files) {
    options.signal?.throwIfAborted();
    let text: string;
    try {
      text = await readFile(file, { encoding: 'utf8', ...(options.signal ? { signal: options.signal } : {}) });
    } catch (error) {
      options.signal?.throwIfAborted();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new TgError('E_SSH', `cannot read the known_hosts file ${file}: ${(error as Error).message}`, { cause: error });
    }
    entries.push(...parseKnownHosts(text, file));
  }
  return entries;
}

// The name a host is filed under: the alias as is, else `host` on port 22 and `[host]:port` otherwise.
export function knownHostsName(lookup: HostKeyLookup): string {
  if (lookup.hostKeyAlias) return lookup.hostKeyAlias.toLowerCase();
  const host = lookup.host.toLowerCase();
  return lookup.port === 22 ? host : `[${host}]:${lookup.port}`;
}

// OpenSSH's wildcard match: `*` any run of characters, `?` exactly one.
function wildcardMatch(name: string, pattern: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${source}$`, 's').test(name);
}

// Whether an entry's host field names `name`: a hash that matches, or a positive pattern with no negated one.
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hosts.kind === 'hashed') {
    const mac = createHmac('sha1', entry.hosts.salt).update(name).digest();
    return mac.length === entry.hosts.hash.length && timingSafeEqual(mac, entry.hosts.hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.patterns) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(name, pattern.slice(1))) return false;
    } else if (wildcardMatch(name, pattern)) {
      matched = true;
    }
  }
  return matched;
}

// The plain (non-marker) entries for a host, in file order.
function hostEntries(entries: readonly KnownHostEntry[], lookup: HostKeyLookup): KnownHostEntry[] {
  const name = knownHostsName(lookup);
  return entries.filter((entry) => entry.marker !== 'cert-authority' && entryMatches(entry, name));
}

// The key types pinned for a host, in file order, for offering them first in the handshake.
export function knownKeyTypes(entries: readonly KnownHostEntry[], lookup: HostKeyLookup): string[] {
  const types = hostEntries(entries, lookup)
    .filter((entry) => entry.marker === undefined)
    .map((entry) => entry.keyType);
  return [...new Set(types)];
}

// Judge a presented host key: revoked beats everything, then an equal key accepts, a different key of the same type is a change, and anything else is unknown.
export function verifyHostKey(entries: readonly KnownHostEntry[], lookup: HostKeyLookup, keyBlob: Buffer): HostKeyVerdict {
  const matching = hostEntries(entries, lookup);
  const revoked = matching.find((entry) => entry.marker === 'revoked' && entry.key.equals(keyBlob));
  if (revoked) return { ok: false, reason: 'revoked', entry: revoked };
  const pinned = matching.filter((entry) => entry.marker === undefined);
  if (pinned.some((entry) => entry.key.equals(keyBlob))) return { ok: true };
  const type = keyTypeOf(keyBlob);
  const changed = pinned.find((entry) => entry.keyType === type);
  if (changed) return { ok: false, reason: 'changed', entry: changed };
  return { ok: false, reason: 'unknown' };
}
