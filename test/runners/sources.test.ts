// The three ways to give `remote-runners` (inline JSON, a JSON file, a Nix machines file), each
// turned into the same validated list, and the one-line errors that name the file and the line.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunners } from '../../helpers/runners/runners.ts';
import { loadRunners, type InventoryEntry } from '../../helpers/inventory/index.ts';
import { TgError } from '../../helpers/shared/error.ts';

// A public key blob of `type` with fixed key material: only its shape matters to the parser.
function keyBlob(type: string, fill: number): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([u32(type.length), Buffer.from(type), u32(32), Buffer.alloc(32, fill)]);
}
const hostKeyLine = `ssh-ed25519 ${keyBlob('ssh-ed25519', 7).toString('base64')}`;
// Nix's host key field: base64 of the public key file, comment and newline included.
const hostKeyField = Buffer.from(`${hostKeyLine} root@h2\n`).toString('base64');

let dir: string;
let files = 0;
// Write `text` to a fresh file in the test's temp dir and return its path.
async function file(text: string, name = `runners-${++files}`): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

// The TgError `fn` throws (sync or async), or a failure if it does not throw one.
async function errorOf(fn: () => unknown): Promise<TgError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TgError);
    return error as TgError;
  }
  throw new Error('expected an error, got none');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inventory-sources-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const LIST = [{ name: 'localhost' }, { name: 'lab-h1', arch: 'x86_64-linux' }, { name: 'lab-h2', arch: 'aarch64-linux', build: 'remote' }];
const JSON_TEXT = JSON.stringify(LIST);
const MACHINES_TEXT = ['# local builds first', 'localhost', '', 'ssh://lab-h1 x86_64-linux  # the first lab host', 'ssh://lab-h2 aarch64-linux'].join('\n');

describe('the three forms of remote-runners', () => {
  it.each<[string, () => Promise<string>]>([
    ['inline JSON', async () => JSON_TEXT],
    ['@file holding JSON', async () => `@${await file(`\n  ${JSON_TEXT}\n`)}`],
  ])('reads %s into the validated list', async (_form, spec) => {
    const text = await spec();
    expect(await loadRunners(text)).toEqual(LIST);
    expect(parseRunners(text)).toEqual(LIST);
  });

  it.each<[string, (path: string) => string]>([
    ['@file that is not JSON', (path) => `@${path}`],
    ['machines:file', (path) => `machines:${path}`],
  ])('reads a Nix machines file given as %s into the same runners', async (_form, spec) => {
    const text = spec(await file(MACHINES_TEXT));
    const runners = [{ name: 'localhost' }, { name: 'lab-h1', arch: 'x86_64-linux' }, { name: 'lab-h2', arch: 'aarch64-linux' }];
    expect(parseRunners(text)).toEqual(runners);
    expect((await loadRunners(text)).map(({ name, arch }) => ({ name, ...(arch ? { arch } : {}) }))).toEqual(runners);
  });
});

describe('a Nix machines line', () => {
  it.each<[string, string, InventoryEntry]>([
    ['ssh://user@host with one system', 'ssh://root@h1 x86_64-linux', { name: 'h1', arch: 'x86_64-linux', protocol: 'ssh', user: 'root', systems: ['x86_64-linux'] }],
    [
      'ssh-ng:// with every field',
      `ssh-ng://nix@h2 aarch64-linux,armv7l-linux /keys/id_h2 8 1.5 kvm,big-parallel benchmark ${hostKeyField}`,
      {
        name: 'h2',
        arch: 'aarch64-linux',
        protocol: 'ssh-ng',
        user: 'nix',
        systems: ['aarch64-linux', 'armv7l-linux'],
        identityFile: '/keys/id_h2',
        maxJobs: 8,
        speedFactor: 1.5,
        supportedFeatures: ['kvm', 'big-parallel'],
        mandatoryFeatures: ['benchmark'],
        hostKey: hostKeyLine,
      },
    ],
    ['a bare user@host with - for every other field', 'builder@h3 x86_64-darwin - - - - - -', { name: 'h3', arch: 'x86_64-darwin', user: 'builder', systems: ['x86_64-darwin'] }],
    ['a bare host', 'h4 aarch64-darwin', { name: 'h4', arch: 'aarch64-darwin', systems: ['aarch64-darwin'] }],
    ['localhost without a system', 'localhost -', { name: 'localhost' }],
    ['local with a system', 'local x86_64-linux - 2', { name: 'localhost', arch: 'x86_64-linux', systems: ['x86_64-linux'], maxJobs: 2 }],
  ])('reads %s', async (_what, line, entry) => {
    expect(await loadRunners(`@${await file(`${line}\n`)}`)).toEqual([entry]);
  });
});

// File contents that must be refused, with the message after `param remote-runners: <file>`.
const badMachines: Array<[string, string, RegExp]> = [
  ['a host without a system', 'ssh://h1 -', / line 1: "h1" has no system \("-" or missing\); only localhost may leave it out$/],
  ['a system we do not build for', 'ssh://h1 sparc-linux', / line 1, system: expected one of x86_64-linux, .* \(got "sparc-linux"\)$/],
  ['a port in the URI', 'ssh://h1:2222 x86_64-linux', / line 1: store URI "ssh:\/\/h1:2222": ports and IPv6 addresses are not supported here; give the host an alias/],
  ['a store that is not SSH', 'https://cache.example x86_64-linux', / line 1: store URI "https:\/\/cache.exampl…" \(21 characters\) is not an SSH store/],
  ['store parameters', 'ssh://h1?remote-store=/x x86_64-linux', / line 1: store URI .* has a path or \?parameters/],
  ['max jobs that is not a number', 'ssh://h1 x86_64-linux - many', / line 1: max jobs "many" is not a whole number$/],
  ['a speed factor of zero', 'ssh://h1 x86_64-linux - 1 0', / line 1: speed factor "0" is not a positive number$/],
  ['a host key that is not base64 of a key line', 'ssh://h1 x86_64-linux - - - - - bm90IGEga2V5', / line 1: host key "bm90IGEga2V5": expected the base64 of an OpenSSH public key line/],
  ['nine fields', 'ssh://h1 x86_64-linux - - - - - - extra', / line 1: 9 fields, but a machines line has at most 8/],
  ['a host with shell metacharacters', 'ssh://h;reboot x86_64-linux', / line 1, host: expected an ssh host alias/],
  ['a bad line after comments and a good line', '# builders\n\nssh://h1 x86_64-linux\nssh://h2 -', / line 4: "h2" has no system/],
  ['no machine at all', '# nothing here yet\n', /: expected at least one runner$/],
];

const badJson: Array<[string, string, RegExp]> = [
  ['invalid JSON', '[{"name":', /: invalid JSON: /],
  ['a host without arch', '[{"name":"h"}]', / at \[0\]\.arch: arch is required for every host but localhost$/],
  ['an unknown field', '[{"name":"localhost","zone":"x"}]', / at \[0\]: .*"zone"/],
  ['an empty list', '[]', /: expected at least one runner$/],
];

describe('a runners file that cannot be used', () => {
  it.each([
    ['a shadow file', 'root:$6$Tx8qzU1c$Jx1m4f3mQ7kqYt0pQ2vS9wE8rY5uI3oP1aS4dF6gH8jK0lZ2xC4vB6nM8qW0eR:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n'],
    ['a JSON file with a secret in it', '[{"name":"h","password":"Tx8qzU1cJx1m4f3mQ7kqYt0pQ2vS9wE8rY5uI3oP1aS4dF6gH8jK0lZ2xC4vB6nM8qW0eR"'],
  ])('quotes no more than a short piece of %s when it is given by mistake', async (_what, text) => {
    const path = await file(text);
    const error = await errorOf(() => loadRunners(`@${path}`));
    expect(error.code).toBe('E_PARAM');
    expect(error.message).not.toMatch(/Jx1m4f3mQ7kq/);
    expect(error.message.length).toBeLessThan(path.length + 200);
  });

  it.each([...badMachines, ...badJson])('is refused for %s with one line naming the file', async (_what, text, message) => {
    const path = await file(text);
    for (const load of [() => loadRunners(`@${path}`), () => parseRunners(`@${path}`)]) {
      const error = await errorOf(load);
      expect(error.code).toBe('E_PARAM');
      expect(error.message.startsWith(`param remote-runners: ${path}`), error.message).toBe(true);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
    }
  });

  it.each<[string, () => Promise<string>, RegExp]>([
    ['a file that does not exist', async () => `@${join(dir, 'missing')}`, /^param remote-runners: .*\/missing: cannot be read \(ENOENT\)$/],
    ['a directory', async () => `@${await mkdir(join(dir, 'a-dir'), { recursive: true }).then(() => join(dir, 'a-dir'))}`, /^param remote-runners: .*\/a-dir: not a regular file$/],
    ['@ without a file name', async () => '@', /^param remote-runners: "@": expected a file name after "@"$/],
    ['machines: without a file name', async () => 'machines:', /^param remote-runners: "machines:": expected a file name after "machines:"$/],
  ])('is refused for %s', async (_what, spec, message) => {
    const text = await spec();
    expect((await errorOf(() => parseRunners(text))).message).toMatch(message);
  });

  it('keeps the inline JSON errors as they were', async () => {
    expect((await errorOf(() => parseRunners('[{"name":"h"}]'))).message).toBe('param remote-runners[0].arch: arch is required for every host but localhost');
    expect((await errorOf(() => loadRunners('[{"name":'))).message).toMatch(/^param remote-runners: invalid JSON: /);
  });
});
