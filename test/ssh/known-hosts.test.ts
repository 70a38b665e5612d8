// known_hosts parsing and host key verdicts: plain, [host]:port, hashed, wildcard, negated,
// revoked and cert-authority lines, and the difference between a changed and an unknown key.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../helpers/shared/ssh-key.ts';
import {
  knownHostsName,
  knownKeyTypes,
  loadKnownHosts,
  parseKnownHosts,
  verifyHostKey,
  type HostKeyLookup,
} from '../../helpers/ssh/known-hosts.ts';

// A raw SSH public key blob of `type`: the type name, then key material (only its shape matters here).
function blob(type: string): Buffer {
  const name = Buffer.from(type);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(name.length);
  const body = randomBytes(32);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([head, name, length, body]);
}

// A hashed host field the way ssh-keygen -H writes it.
function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const keys = {
  a: blob('ssh-ed25519'),
  b: blob('ssh-ed25519'),
  c: blob('ssh-ed25519'),
  d: blob('ssh-ed25519'),
  e: blob('ssh-ed25519'),
  f: blob('ssh-ed25519'),
  g: blob('ssh-ed25519'),
  revoked: blob('ssh-ed25519'),
  ca: blob('ssh-ed25519'),
  rsa: blob('ssh-rsa'),
  stranger: blob('ssh-ed25519'),
  ecdsa: blob('ecdsa-sha2-nistp256'),
};
type KeyName = keyof typeof keys;
const b64 = (key: KeyName): string => keys[key].toString('base64');

const knownHostsText = [
  '# pinned hosts',
  '',
  `10.0.0.1,alpha.example ssh-ed25519 ${b64('a')} root@alpha`,
  `[10.0.0.2]:2222 ssh-ed25519 ${b64('b')}`,
  `*.lab.example,!bad.lab.example ssh-ed25519 ${b64('c')}`,
  `host-?.example ssh-ed25519 ${b64('d')}`,
  `pinned-alias ssh-ed25519 ${b64('e')}`,
  `${hashed('hashed.example')} ssh-ed25519 ${b64('f')}`,
  `${hashed('[hashed.example]:2200')} ssh-ed25519 ${b64('g')}`,
  `Upper.Example ssh-rsa ${b64('rsa')}`,
  `revoked.example ssh-ed25519 ${b64('revoked')}`,
  `@revoked * ssh-ed25519 ${b64('revoked')}`,
  `@cert-authority * ssh-ed25519 ${b64('ca')}`,
  '@unknown-marker * ssh-ed25519 AAAA',
  'broken.example ssh-ed25519 not!base64',
  `mislabelled.example ssh-rsa ${b64('a')}`,
  '   # an indented comment',
].join('\n');

const entries = parseKnownHosts(knownHostsText, '/etc/test/known_hosts');
const at = (host: string, port = 22, hostKeyAlias?: string): HostKeyLookup => ({ host, port, hostKeyAlias });

describe('known_hosts', () => {
  it('keeps only valid key lines, with their file, line number and marker', () => {
    expect(entries.map((e) => [e.line, e.marker ?? '-', e.keyType])).toEqual([
      [3, '-', 'ssh-ed25519'],
      [4, '-', 'ssh-ed25519'],
      [5, '-', 'ssh-ed25519'],
      [6, '-', 'ssh-ed25519'],
      [7, '-', 'ssh-ed25519'],
      [8, '-', 'ssh-ed25519'],
      [9, '-', 'ssh-ed25519'],
      [10, '-', 'ssh-rsa'],
      [11, '-', 'ssh-ed25519'],
      [12, 'revoked', 'ssh-ed25519'],
      [13, 'cert-authority', 'ssh-ed25519'],
    ]);
    expect(new Set(entries.map((e) => e.file))).toEqual(new Set(['/etc/test/known_hosts']));
  });

  it.each([
    ['host on port 22', at('10.0.0.1'), '10.0.0.1'],
    ['host on another port', at('10.0.0.1', 2222), '[10.0.0.1]:2222'],
    ['mixed case', at('Alpha.Example'), 'alpha.example'],
    ['an alias, whatever the port', at('10.0.0.9', 2222, 'Pinned-Alias'), 'pinned-alias'],
  ])('files a %s under the name ssh uses', (_what, lookup, name) => {
    expect(knownHostsName(lookup)).toBe(name);
  });

  it.each<[string, HostKeyLookup, KeyName, 'ok' | 'unknown' | 'changed' | 'revoked']>([
    ['a plain entry by address', at('10.0.0.1'), 'a', 'ok'],
    ['a plain entry by its second name', at('alpha.example'), 'a', 'ok'],
    ['a plain entry, case-insensitively', at('ALPHA.example'), 'a', 'ok'],
    ['a plain entry with another key of the same type', at('10.0.0.1'), 'b', 'changed'],
    ['a plain entry with a key of a type it does not pin', at('10.0.0.1'), 'ecdsa', 'unknown'],
    ['a plain entry looked up on another port', at('10.0.0.1', 2222), 'a', 'unknown'],
    ['a [host]:port entry on that port', at('10.0.0.2', 2222), 'b', 'ok'],
    ['a [host]:port entry with another key', at('10.0.0.2', 2222), 'a', 'changed'],
    ['a [host]:port entry looked up on port 22', at('10.0.0.2'), 'b', 'unknown'],
    ['a * wildcard', at('x.lab.example'), 'c', 'ok'],
    ['a * wildcard with another key', at('y.lab.example'), 'd', 'changed'],
    ['a negated name inside a wildcard', at('bad.lab.example'), 'c', 'unknown'],
    ['a ? wildcard', at('host-7.example'), 'd', 'ok'],
    ['a ? wildcard that needs exactly one character', at('host-17.example'), 'd', 'unknown'],
    ['a HostKeyAlias instead of the address', at('10.9.9.9', 2022, 'pinned-alias'), 'e', 'ok'],
    ['a HostKeyAlias with another key', at('10.9.9.9', 22, 'pinned-alias'), 'a', 'changed'],
    ['the address when a HostKeyAlias is set', at('10.0.0.1', 22, 'unlisted-alias'), 'a', 'unknown'],
    ['a hashed entry', at('hashed.example'), 'f', 'ok'],
    ['a hashed entry with another key', at('hashed.example'), 'g', 'changed'],
    ['a hashed [host]:port entry', at('hashed.example', 2200), 'g', 'ok'],
    ['a hashed entry for some other host', at('other.example'), 'f', 'unknown'],
    ['an rsa entry', at('upper.example'), 'rsa', 'ok'],
    ['a revoked key, even where it is pinned', at('revoked.example'), 'revoked', 'revoked'],
    ['a revoked key on any host', at('10.0.0.1'), 'revoked', 'revoked'],
    ['a @cert-authority key, as no pin, on a host that pins another key', at('10.0.0.1'), 'ca', 'changed'],
    ['a @cert-authority key on a host with no pinned key', at('nowhere.example'), 'ca', 'unknown'],
    ['a host no entry names', at('nowhere.example'), 'stranger', 'unknown'],
    ['a key whose line names another type', at('mislabelled.example'), 'a', 'unknown'],
  ])('judges %s', (_what, lookup, key, expected) => {
    const verdict = verifyHostKey(entries, lookup, keys[key]);
    expect(verdict.ok ? 'ok' : verdict.reason).toBe(expected);
  });

  it('points a changed key at the line that pins the old one', () => {
    const verdict = verifyHostKey(entries, at('10.0.0.2', 2222), keys.a);
    expect(verdict).toMatchObject({ ok: false, reason: 'changed', entry: { file: '/etc/test/known_hosts', line: 4 } });
  });

  it.each([
    [at('10.0.0.1'), ['ssh-ed25519']],
    [at('upper.example'), ['ssh-rsa']],
    [at('nowhere.example'), []],
  ])('lists the key types pinned for %j', (lookup, types) => {
    expect(knownKeyTypes(entries, lookup)).toEqual(types);
  });

  it('prints fingerprints the way ssh-keygen -l does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'known-hosts-fp-'));
    try {
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')], { timeout: 10_000 });
      const pub = await readFile(join(dir, 'key.pub'), 'utf8');
      const listed = (await execa('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'key.pub')], { timeout: 10_000 })).stdout;
      expect(listed).toContain(fingerprint(Buffer.from(pub.split(' ')[1]!, 'base64')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('files', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'known-hosts-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads files in order and treats a missing one as empty', async () => {
      await writeFile(join(dir, 'one'), `first.example ssh-ed25519 ${b64('a')}\n`);
      await writeFile(join(dir, 'two'), `second.example ssh-ed25519 ${b64('b')}\n`);
      const loaded = await loadKnownHosts([join(dir, 'one'), join(dir, 'missing'), join(dir, 'two'), '/dev/null']);
      expect(loaded.map((e) => [e.file, e.line])).toEqual([
        [join(dir, 'one'), 1],
        [join(dir, 'two'), 1],
      ]);
      expect(verifyHostKey(loaded, at('second.example'), keys.b)).toEqual({ ok: true });
    });

    it('refuses a known_hosts path it cannot read, naming it', async () => {
      await expect(loadKnownHosts([dir])).rejects.toMatchObject({ code: 'E_SSH', message: expect.stringContaining(dir) });
    });

    it('matches the entries ssh-keygen -H hashes, on port 22 and on another port', async () => {
      const file = join(dir, 'to-hash');
      await writeFile(file, `hashme.example ssh-ed25519 ${b64('a')}\n[hashme.example]:2022 ssh-ed25519 ${b64('b')}\n`);
      await execa('ssh-keygen', ['-H', '-f', file], { timeout: 10_000 });
      const text = await readFile(file, 'utf8');
      expect(text).not.toContain('hashme.example');
      const loaded = await loadKnownHosts([file]);
      expect(loaded.every((e) => e.hosts.kind === 'hashed')).toBe(true);
      expect(verifyHostKey(loaded, at('hashme.example'), keys.a)).toEqual({ ok: true });
      expect(verifyHostKey(loaded, at('hashme.example', 2022), keys.b)).toEqual({ ok: true });
      expect(verifyHostKey(loaded, at('hashme.example'), keys.b)).toMatchObject({ ok: false, reason: 'changed' });
      expect(verifyHostKey(loaded, at('other.example'), keys.a)).toMatchObject({ ok: false, reason: 'unknown' });
    });

    it('stops reading when the signal is aborted', async () => {
      const reason = new Error('stop');
      await expect(loadKnownHosts([join(dir, 'one')], { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    });
  });
});
