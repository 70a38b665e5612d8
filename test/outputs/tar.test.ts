// Outputs as a tar stream: packed by the Go remote agent (`remote-agent pack`) without
// following links, extracted by extractOutputs as plain files only.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import tar, { type Header } from 'tar-stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { extractOutputs, type ExtractReport } from '../../helpers/outputs/tar.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { agentBinary, agentPack } from '../helpers/agent.ts';

let tmp: string;

beforeAll(async () => {
  await agentBinary();
});

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'outputs-tar-'));
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** One entry of a hand-built archive. */
interface Item {
  header: Partial<Header> & Pick<Header, 'name'>;
  body?: string | Buffer;
}

// A tar archive of `items`, built entry by entry with tar-stream.
async function archive(items: Item[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { header, body } of items) {
    if (body === undefined) pack.entry(header);
    else pack.entry(header, body);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// A readable that yields `buffer` in small pieces, as a network stream would.
function streamOf(buffer: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < buffer.length; at += 4096) pieces.push(buffer.subarray(at, at + 4096));
  return Readable.from(pieces, { objectMode: false });
}

// The entries of a tar stream: name, type, link target and contents.
async function entriesOf(source: Readable): Promise<Array<{ name: string; type: string; linkname: string | null; body: Buffer }>> {
  const extract = tar.extract();
  source.on('error', (error) => extract.destroy(error));
  source.pipe(extract as unknown as NodeJS.WritableStream);
  const found = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    found.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname, body: Buffer.concat(chunks) });
  }
  return found;
}

// Every path under `dir` with its kind and contents, for comparing trees.
async function snapshot(dir: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const abs = join(dir, rel);
    const st = await lstat(abs);
    if (st.isDirectory()) tree[rel] = 'dir';
    else if (st.isSymbolicLink()) tree[rel] = `link ${await readlink(abs)}`;
    else tree[rel] = (await readFile(abs)).toString('base64');
  }
  return tree;
}

// The rejection of `promise`, checked to be a TgError.
async function rejection(promise: Promise<unknown>): Promise<TgError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TgError);
    return error as TgError;
  }
  throw new Error('expected a rejection, got none');
}

// Wait until `check` holds, failing after `ms`.
async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// True when `path` exists, without following a link.
async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

// Extract a hand-built archive into a fresh `dest` under the temp dir.
async function extractItems(items: Item[], dest = join(tmp, 'dest')): Promise<ExtractReport> {
  return extractOutputs(streamOf(await archive(items)), dest);
}

// The reasons `report` gives for refusing `name`.
function reasonsFor(report: ExtractReport, name: string): string[] {
  return report.refused.filter((r) => r.name === name).map((r) => r.reason);
}

describe('remote-agent pack and extractOutputs', () => {
  it('round-trip a tree with nested dirs, empty, binary and awkwardly named files byte for byte', async () => {
    const src = join(tmp, 'src');
    const awkward = `it's "quoted" $(touch pwned) \`x\` and spaces.txt`;
    const long = `${'deep/'.repeat(30)}end.txt`;
    await mkdir(join(src, 'sub', 'deeper', 'deepest'), { recursive: true });
    await mkdir(join(src, 'empty-dir'));
    await mkdir(join(src, long, '..'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'hello\n');
    await writeFile(join(src, 'empty'), '');
    await writeFile(join(src, 'sub', 'b.bin'), Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(300_001)]));
    await writeFile(join(src, 'sub', 'deeper', 'deepest', 'c.txt'), 'c');
    await writeFile(join(src, 'ünïcødé 名前 🚀.txt'), 'unicode');
    await writeFile(join(src, awkward), 'awkward');
    await writeFile(join(src, long), 'long');

    const dest = join(tmp, 'dest');
    const report = await extractOutputs(await agentPack(src), dest, {});

    expect(await snapshot(dest)).toEqual(await snapshot(src));
    expect(report.refused).toEqual([]);
    expect(report.files).toBe(7);
    expect(report.dirs).toBe(4 + 30);
    expect(report.bytes).toBe(6 + 256 + 300_001 + 1 + 7 + 7 + 4);
    expect(await exists(join(dest, 'pwned'))).toBe(false);
  });

  it('keep the owner permission bits of files and directories', async () => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'd'), { recursive: true });
    await writeFile(join(src, 'run.sh'), '#!/bin/sh\n');
    await chmod(join(src, 'run.sh'), 0o750);
    await writeFile(join(src, 'ro.txt'), 'x');
    await chmod(join(src, 'ro.txt'), 0o444);
    await chmod(join(src, 'd'), 0o750);
    const dest = join(tmp, 'dest');
    await extractOutputs(await agentPack(src), dest);
    expect((await stat(join(dest, 'run.sh'))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(dest, 'ro.txt'))).mode & 0o7777).toBe(0o644);
    expect((await stat(join(dest, 'd'))).mode & 0o7777).toBe(0o750);
  });

  it('round-trip 5,000 small files and one 20 MB file', async () => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'many'), { recursive: true });
    for (let batch = 0; batch < 5_000; batch += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(src, 'many', `f${batch + i}.txt`), `file ${batch + i}\n`)));
    }
    const big = randomBytes(20 * 1024 * 1024);
    await writeFile(join(src, 'big.bin'), big);

    const dest = join(tmp, 'dest');
    const report = await extractOutputs(await agentPack(src), dest);

    expect(report).toMatchObject({ files: 5_001, dirs: 1, refused: [] });
    expect((await readdir(join(dest, 'many'))).length).toBe(5_000);
    expect(await readFile(join(dest, 'many', 'f4321.txt'), 'utf8')).toBe('file 4321\n');
    expect((await readFile(join(dest, 'big.bin'))).equals(big)).toBe(true);
  }, 120_000);
});

describe('remote-agent pack', () => {
  it('packs a symlink to an outside directory as a link entry and never the files behind it', async () => {
    const outside = join(tmp, 'outside');
    const src = join(tmp, 'src');
    await mkdir(outside);
    await mkdir(src);
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await writeFile(join(src, 'real.txt'), 'real');
    await symlink(outside, join(src, 'link'));

    const entries = await entriesOf(await agentPack(src));

    expect(entries.map(({ name, type, linkname }) => ({ name, type, linkname }))).toEqual([
      { name: 'link', type: 'symlink', linkname: outside },
      { name: 'real.txt', type: 'file', linkname: null },
    ]);
    expect(entries.some((e) => e.body.toString().includes('secret'))).toBe(false);
  });

  it('names entries relative to the directory, with a slash after directories', async () => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'a');
    await writeFile(join(src, 'sub', 'b.bin'), 'b');
    expect((await entriesOf(await agentPack(src))).map((e) => `${e.type} ${e.name}`)).toEqual([
      'file a.txt',
      'directory sub/',
      'file sub/b.bin',
    ]);
  });

  it('skips fifos without opening them', async () => {
    const src = join(tmp, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'a');
    execFileSync('mkfifo', [join(src, 'pipe')]);
    expect((await entriesOf(await agentPack(src))).map((e) => e.name)).toEqual(['a.txt']);
  });

  it('fails with E_OUTPUTS naming a directory that does not exist', async () => {
    const missing = join(tmp, 'missing');
    const error = await rejection(entriesOf(await agentPack(missing)));
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toContain(missing);
  });

  it.skipIf(process.getuid?.() === 0)('fails with E_OUTPUTS naming a file it cannot read', async () => {
    const src = join(tmp, 'src');
    await mkdir(src);
    await writeFile(join(src, 'locked.txt'), 'x');
    await chmod(join(src, 'locked.txt'), 0o000);
    const error = await rejection(entriesOf(await agentPack(src)));
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toContain(join(src, 'locked.txt'));
  });

  it('fails with E_OUTPUTS naming a file that shrinks while it is being packed', async () => {
    const src = join(tmp, 'src');
    await mkdir(src);
    const file = join(src, 'growing.log');
    await writeFile(file, randomBytes(8 * 1024 * 1024));
    let read = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of await agentPack(src)) {
          if (read === 0) await truncate(file, 1000);
          read += (chunk as Buffer).length;
        }
      })(),
    );
    expect(read).toBeLessThan(8 * 1024 * 1024);
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toContain(file);
  });

  it('stops with the reason when the signal aborts, and the agent exits once its reader is gone', async () => {
    const src = join(tmp, 'src');
    await mkdir(src);
    await writeFile(join(src, 'big.bin'), randomBytes(4 * 1024 * 1024));
    const controller = new AbortController();
    const reason = new Error('stop packing');
    const packed = await agentPack(src, { signal: controller.signal });
    let read = 0;
    await expect(
      (async () => {
        for await (const chunk of packed) {
          controller.abort(reason);
          read += (chunk as Buffer).length;
        }
      })(),
    ).rejects.toBe(reason);
    expect(read).toBeLessThan(4 * 1024 * 1024);
    const exited = await Promise.race([packed.exited, sleep(10_000, 'still running')]);
    expect(exited).not.toBe('still running');
    expect(exited).not.toBe(0);
  });
});

describe('extractOutputs', () => {
  it('refuses names that are absolute or climb out of the destination, and keeps going', async () => {
    const root = join(tmp, 'root');
    const dest = join(root, 'dest');
    const report = await extractItems(
      [
        { header: { name: '../escape' }, body: 'x' },
        { header: { name: '/abs/path' }, body: 'x' },
        { header: { name: 'a/../../b' }, body: 'x' },
        { header: { name: 'ok/../ok.txt' }, body: 'x' },
        { header: { name: './fine.txt' }, body: 'fine' },
      ],
      dest,
    );
    expect(reasonsFor(report, '../escape')).toEqual(['path contains a .. segment']);
    expect(reasonsFor(report, '/abs/path')).toEqual(['absolute path']);
    expect(reasonsFor(report, 'a/../../b')).toEqual(['path contains a .. segment']);
    expect(reasonsFor(report, 'ok/../ok.txt')).toEqual(['path contains a .. segment']);
    expect(report.files).toBe(1);
    expect(await readdir(root)).toEqual(['dest']);
    expect(await snapshot(dest)).toEqual({ 'fine.txt': Buffer.from('fine').toString('base64') });
    expect(await exists('/abs/path')).toBe(false);
  });

  it('refuses an empty name and a name with NUL in it', async () => {
    const report = await extractItems([
      { header: { name: './', type: 'directory' } },
      { header: { name: 'a\0b', pax: {} }, body: 'x' },
      { header: { name: 'after.txt' }, body: 'after' },
    ]);
    expect(report.refused.map((r) => r.reason)).toEqual(['empty path', 'name contains NUL']);
    expect(await snapshot(join(tmp, 'dest'))).toEqual({ 'after.txt': Buffer.from('after').toString('base64') });
  });

  it('refuses a symlink entry and never writes through it into its target', async () => {
    const target = join(tmp, 'somewhere');
    await mkdir(target);
    const dest = join(tmp, 'dest');
    const report = await extractItems(
      [
        { header: { name: 'link', type: 'symlink', linkname: target } },
        { header: { name: 'link/pwned' }, body: 'pwned' },
      ],
      dest,
    );
    expect(reasonsFor(report, 'link')[0]).toMatch(/^symlink to .*links are not extracted$/);
    expect(await readdir(target)).toEqual([]);
    expect((await lstat(join(dest, 'link'))).isSymbolicLink()).toBe(false);
  });

  it('refuses to write through a directory that exists locally as a symlink', async () => {
    const target = join(tmp, 'somewhere');
    const dest = join(tmp, 'dest');
    await mkdir(target);
    await mkdir(dest);
    await symlink(target, join(dest, 'link'));
    const report = await extractItems([{ header: { name: 'link/pwned' }, body: 'pwned' }, { header: { name: 'link/', type: 'directory' } }], dest);
    expect(reasonsFor(report, 'link/pwned')).toEqual(['link exists locally as a symlink']);
    expect(reasonsFor(report, 'link/')).toEqual(['link exists locally as a symlink']);
    expect(await readdir(target)).toEqual([]);
  });

  it('refuses a file whose name exists locally as a symlink and leaves the outside file unchanged', async () => {
    const outside = join(tmp, 'passwd');
    const dest = join(tmp, 'dest');
    await writeFile(outside, 'root:x:0:0\n');
    await mkdir(dest);
    await symlink(outside, join(dest, 'x'));
    const report = await extractItems([{ header: { name: 'x' }, body: 'pwned' }], dest);
    expect(reasonsFor(report, 'x')).toEqual(['exists locally as a symlink']);
    expect(await readFile(outside, 'utf8')).toBe('root:x:0:0\n');
    expect(await readlink(join(dest, 'x'))).toBe(outside);
  });

  it('replaces a regular file that already exists', async () => {
    const dest = join(tmp, 'dest');
    await mkdir(dest);
    await writeFile(join(dest, 'x'), 'old contents, longer');
    const report = await extractItems([{ header: { name: 'x' }, body: 'new' }], dest);
    expect(report.files).toBe(1);
    expect(await readFile(join(dest, 'x'), 'utf8')).toBe('new');
  });

  it('refuses hardlinks, devices, fifos and other entry types', async () => {
    const dest = join(tmp, 'dest');
    const report = await extractItems(
      [
        { header: { name: 'target.txt' }, body: 'target' },
        { header: { name: 'hard', type: 'link', linkname: 'target.txt' } },
        { header: { name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 } },
        { header: { name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 } },
        { header: { name: 'pipe', type: 'fifo' } },
        { header: { name: 'contig', type: 'contiguous-file' }, body: 'c' },
      ],
      dest,
    );
    expect(reasonsFor(report, 'hard')[0]).toMatch(/^hardlink to "target.txt"/);
    expect(reasonsFor(report, 'tty')).toEqual(['character-device entries are not extracted']);
    expect(reasonsFor(report, 'disk')).toEqual(['block-device entries are not extracted']);
    expect(reasonsFor(report, 'pipe')).toEqual(['fifo entries are not extracted']);
    expect(reasonsFor(report, 'contig')).toEqual(['contiguous-file entries are not extracted']);
    expect(await readdir(dest)).toEqual(['target.txt']);
  });

  it('strips setuid, setgid and sticky bits and group and other write', async () => {
    const dest = join(tmp, 'dest');
    await extractItems(
      [
        { header: { name: 'suid', mode: 0o6777 }, body: '#!/bin/sh\n' },
        { header: { name: 'write-only', mode: 0o222 }, body: 'x' },
        { header: { name: 'sticky/', type: 'directory', mode: 0o1777 } },
      ],
      dest,
    );
    expect((await stat(join(dest, 'suid'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dest, 'write-only'))).mode & 0o7777).toBe(0o600);
    expect((await stat(join(dest, 'sticky'))).mode & 0o7777).toBe(0o755);
  });

  it('refuses a file where a directory exists and a directory where a file exists', async () => {
    const report = await extractItems([
      { header: { name: 'd/', type: 'directory' } },
      { header: { name: 'd' }, body: 'x' },
      { header: { name: 'f' }, body: 'x' },
      { header: { name: 'f/g' }, body: 'x' },
    ]);
    expect(reasonsFor(report, 'd')).toEqual(['exists locally as a directory']);
    expect(reasonsFor(report, 'f/g')).toEqual(['f exists locally as a file']);
  });

  it('keeps the files before a truncation and rejects naming the count and the incomplete file', async () => {
    const whole = await archive([
      { header: { name: 'a.txt' }, body: 'a'.repeat(1000) },
      { header: { name: 'b.txt' }, body: 'b'.repeat(1000) },
      { header: { name: 'c.bin' }, body: randomBytes(100_000) },
    ]);
    const dest = join(tmp, 'dest');
    const error = await rejection(extractOutputs(streamOf(whole.subarray(0, 4096 + 50_000)), dest, { from: 'lab-1' }));
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toMatch(/^outputs from lab-1: stream ended early after 2 files/);
    expect(error.message).toContain(join(dest, 'c.bin'));
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('a'.repeat(1000));
    expect(await readFile(join(dest, 'b.txt'), 'utf8')).toBe('b'.repeat(1000));
  });

  it('rejects a stream cut exactly between entries, without the end-of-archive marker', async () => {
    const whole = await archive([
      { header: { name: 'a.txt' }, body: 'a' },
      { header: { name: 'b.txt' }, body: 'b' },
    ]);
    const dest = join(tmp, 'dest');
    const error = await rejection(extractOutputs(streamOf(whole.subarray(0, whole.length - 1024)), dest));
    expect(error.message).toMatch(/^outputs from the remote: stream ended early after 2 files/);
    expect(await readFile(join(dest, 'b.txt'), 'utf8')).toBe('b');
  });

  it('rejects an empty stream', async () => {
    const error = await rejection(extractOutputs(streamOf(Buffer.alloc(0)), join(tmp, 'dest')));
    expect(error.message).toMatch(/stream ended early after 0 files/);
  });

  it('rejects a stream that fails, naming its error and the incomplete file', async () => {
    const whole = await archive([
      { header: { name: 'a.txt' }, body: 'a' },
      { header: { name: 'b.bin' }, body: randomBytes(100_000) },
    ]);
    const source = new PassThrough();
    source.write(whole.subarray(0, 1024 + 512 + 10_000));
    const dest = join(tmp, 'dest');
    const extracting = rejection(extractOutputs(source, dest, { from: 'lab-2' }));
    await until(() => exists(join(dest, 'b.bin')));
    source.destroy(new Error('channel reset'));
    const error = await extracting;
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toMatch(/^outputs from lab-2: stream ended early after 1 files; .*b\.bin is incomplete .*: channel reset$/);
  });

  it('stops at maxBytes and keeps what arrived before', async () => {
    const dest = join(tmp, 'dest');
    const source = streamOf(
      await archive([
        { header: { name: 'a' }, body: 'a'.repeat(1000) },
        { header: { name: 'b' }, body: 'b'.repeat(1000) },
        { header: { name: 'c' }, body: 'c'.repeat(1000) },
      ]),
    );
    const error = await rejection(extractOutputs(source, dest, { maxBytes: 2500 }));
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toMatch(/more than 2500 bytes \(the limit\) at c; stopped after 2 files/);
    expect((await readdir(dest)).sort()).toEqual(['a', 'b']);
    expect(source.destroyed).toBe(true);
  });

  it('keeps its refusal report bounded: 300 links with 1 MiB targets give 100 short reasons and a count', async () => {
    const target = `/${'t'.repeat(1 << 20)}`;
    const items = Array.from({ length: 300 }, (_, i) => ({ header: { name: `link-${i}`, type: 'symlink' as const, linkname: target } }));
    const report = await extractOutputs(streamOf(await archive(items)), join(tmp, 'out'));
    expect(report.refusedTotal).toBe(300);
    expect(report.refused).toHaveLength(100);
    for (const refused of report.refused) expect(refused.reason.length).toBeLessThan(300);
    expect(JSON.stringify(report).length).toBeLessThan(64 * 1024);
  });

  it('writes runs of zeros as holes, so a sparse file stays sparse', async () => {
    const size = 64 << 20;
    const body = Buffer.alloc(size);
    body.write('start', 0);
    body.write('end', size - 3);
    const report = await extractOutputs(streamOf(await archive([{ header: { name: 'sparse.bin', mode: 0o644 }, body }])), join(tmp, 'out'));
    expect(report.bytes).toBe(size);
    const st = await stat(join(tmp, 'out', 'sparse.bin'));
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    const head = Buffer.alloc(5);
    const fh = await open(join(tmp, 'out', 'sparse.bin'), 'r');
    await fh.read(head, 0, 5, 0);
    await fh.close();
    expect(head.toString()).toBe('start');
  });

  it('stops at maxEntries, counting refused entries too', async () => {
    const dest = join(tmp, 'dest');
    const source = streamOf(
      await archive([
        { header: { name: 'a' }, body: 'a' },
        { header: { name: 'l', type: 'symlink', linkname: 'a' } },
        { header: { name: 'b' }, body: 'b' },
      ]),
    );
    const error = await rejection(extractOutputs(source, dest, { maxEntries: 2 }));
    expect(error.code).toBe('E_OUTPUTS');
    expect(error.message).toMatch(/more than 2 entries; stopped after 1 files/);
    expect(await readdir(dest)).toEqual(['a']);
  });

  it('aborts with the signal reason, destroys the source and keeps what arrived', async () => {
    const whole = await archive([
      { header: { name: 'a.txt' }, body: 'a' },
      { header: { name: 'b.bin' }, body: randomBytes(100_000) },
    ]);
    const source = new PassThrough();
    source.write(whole.subarray(0, 1024 + 512 + 10_000));
    const dest = join(tmp, 'dest');
    const controller = new AbortController();
    const extracting = extractOutputs(source, dest, { signal: controller.signal });
    await until(() => exists(join(dest, 'b.bin')));
    const reason = new Error('run cancelled');
    controller.abort(reason);
    await expect(extracting).rejects.toBe(reason);
    expect(source.destroyed).toBe(true);
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('a');
  });

  it('rejects with the reason of a signal that was aborted before it started', async () => {
    const reason = new Error('already cancelled');
    const source = streamOf(await archive([{ header: { name: 'a.txt' }, body: 'a' }]));
    await expect(extractOutputs(source, join(tmp, 'dest'), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(source.destroyed).toBe(true);
    expect(await exists(join(tmp, 'dest', 'a.txt'))).toBe(false);
  });
});
