// An instance's outputs directory as a tar stream, both ways: packed on the remote
// without following links, extracted here as plain files and directories only.
import fs, { constants } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tar, { type Extract, type Header, type Pack } from 'tar-stream';
import { TgError } from '../shared/error.ts';

/** What extractOutputs did: the entries it wrote and the ones it would not. */
export interface ExtractReport {
  /** Regular files written. */
  files: number;
  /** Directory entries extracted (parents made on the way are not counted). */
  dirs: number;
  /** Bytes of file contents written. */
  bytes: number;
  /** Entries skipped, with the archive's name for each and why. */
  refused: Array<{ name: string; reason: string }>;
}

/** Options of extractOutputs. */
export interface ExtractOptions {
  signal?: AbortSignal;
  /** The most content bytes the archive may carry over all its entries; unlimited by default. */
  maxBytes?: number;
  /** The most entries the archive may hold; 1,000,000 by default. */
  maxEntries?: number;
  /** Where the archive comes from, for messages (a host name); `the remote` by default. */
  from?: string;
}

const CHUNK = 256 * 1024;
const BLOCK = 512;
const DEFAULT_MAX_ENTRIES = 1_000_000;
// Plain descriptors: FileHandle costs several times more per file, which 5,000 small files feel.
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fstatFd = promisify(fs.fstat);
const fchmodFd = promisify(fs.fchmod);
const readFd = promisify(fs.read);
const writeFd = promisify(fs.write);

// Pack `dir`'s tree as a tar stream of relative entries; links stay links, special files are left out.
export function packOutputs(dir: string, options: { signal?: AbortSignal } = {}): Readable {
  const pack = tar.pack();
  const out = Readable.from(pack, { objectMode: false });
  const { signal } = options;
  if (signal) {
    const onAbort = (): void => {
      out.destroy(signal.reason);
    };
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  fill(pack, dir).then(
    () => {
      if (!pack.destroying) pack.finalize();
    },
    (error: unknown) => {
      if (!pack.destroying) pack.destroy(error as Error);
    },
  );
  return out;
}

/** One directory being walked: its listing and how far into it the walk is. */
interface Frame {
  abs: string;
  rel: string;
  names: string[];
  next: number;
}

// Add every entry under `root` to `pack`, depth first, one after another; stops when `pack` is destroyed.
async function fill(pack: Pack, root: string): Promise<void> {
  const stack: Frame[] = [await listing(root, '')];
  while (stack.length > 0 && !pack.destroying) {
    const frame = stack[stack.length - 1] as Frame;
    const name = frame.names[frame.next++];
    if (name === undefined) {
      stack.pop();
      continue;
    }
    const abs = join(frame.abs, name);
    const rel = frame.rel + name;
    const st = await guarded(abs, 'stat', () => lstat(abs));
    if (!st) continue;
    const header = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) {
      await add(pack, { ...header, name: `${rel}/`, type: 'directory' });
      stack.push(await listing(abs, `${rel}/`));
    } else if (st.isSymbolicLink()) {
      const linkname = await guarded(abs, 'read the link', () => readlink(abs));
      if (linkname !== undefined) await add(pack, { ...header, type: 'symlink', linkname });
    } else if (st.isFile()) {
      await packFile(pack, abs, header);
    }
  }
}

// The sorted names in directory `abs`, whose entries are named `rel` + name in the archive.
async function listing(abs: string, rel: string): Promise<Frame> {
  const names = rel === '' ? await failing(abs, 'list', () => readdir(abs)) : await guarded(abs, 'list', () => readdir(abs));
  return { abs, rel, names: (names ?? []).sort(), next: 0 };
}

// Run a file operation on `abs`; a path that vanished meanwhile gives undefined, other failures E_OUTPUTS.
async function guarded<T>(abs: string, what: string, op: () => Promise<T>): Promise<T | undefined> {
  try {
    return await op();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw packError(abs, what, error);
  }
}

// Run a file operation on `abs`; any failure is E_OUTPUTS naming the path.
async function failing<T>(abs: string, what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw packError(abs, what, error);
  }
}

// The error of a path that cannot be packed.
function packError(abs: string, what: string, cause: unknown): TgError {
  if (cause instanceof TgError) return cause;
  return new TgError('E_OUTPUTS', `outputs: cannot ${what} ${abs}: ${(cause as Error).message}`, { cause });
}

// Add an entry without contents and wait until it is in the stream.
async function add(pack: Pack, header: Partial<Header> & Pick<Header, 'name'>): Promise<void> {
  await entryDone(pack, header).done;
}

// Start an entry; `done` settles when the entry is complete or the pack is destroyed.
function entryDone(pack: Pack, header: Partial<Header> & Pick<Header, 'name'>): { sink: ReturnType<Pack['entry']>; done: Promise<void> } {
  let settle: (error?: Error | null) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  done.catch(() => {});
  const sink = pack.entry(header, (error) => settle(error));
  sink.on('error', () => {}); // reported through `done` and the pack
  return { sink, done };
}

// Stream one regular file into `pack`, reading exactly the size it had when opened.
async function packFile(pack: Pack, abs: string, header: { name: string; mode: number; mtime: Date }): Promise<void> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const fd = await guarded(abs, 'open', () => openFd(abs, flags));
  if (fd === undefined) return;
  try {
    const st = await failing(abs, 'stat', () => fstatFd(fd));
    if (!st.isFile()) return;
    const { sink, done } = entryDone(pack, { ...header, type: 'file', size: st.size });
    let position = 0;
    while (position < st.size) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, st.size - position));
      const { bytesRead } = await failing(abs, 'read', () => readFd(fd, buffer, 0, buffer.length, position));
      if (bytesRead === 0) {
        throw new TgError('E_OUTPUTS', `outputs: ${abs} shrank from ${st.size} to ${position} bytes while being packed`);
      }
      position += bytesRead;
      if (pack.destroying) return;
      if (!sink.write(buffer.subarray(0, bytesRead))) await drained(sink);
    }
    sink.end(undefined); // streamx declares the argument, takes none
    await done;
  } finally {
    await closeFd(fd);
  }
}

/** The part of a streamx writable that backpressure needs. */
interface Drainable {
  destroying: boolean;
  once(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

// Resolve when a streamx writable can take more, or is gone.
function drained(stream: Drainable): Promise<void> {
  if (stream.destroying) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

/** A file being written, for the message of a stream that fails midway. */
interface Writing {
  path: string;
  written: number;
  size: number;
}

// Extract the tar stream `source` under `dest` as plain files and directories, refusing anything else.
export async function extractOutputs(source: Readable, dest: string, options: ExtractOptions = {}): Promise<ExtractReport> {
  const { signal, maxBytes = Number.POSITIVE_INFINITY, maxEntries = DEFAULT_MAX_ENTRIES } = options;
  const from = options.from ?? 'the remote';
  const root = resolve(dest);
  const report: ExtractReport = { files: 0, dirs: 0, bytes: 0, refused: [] };
  const placer = new Placer(root);
  const extract = tar.extract();
  const fed = { bytes: 0 };
  const onAbort = (): void => {
    source.destroy();
    extract.destroy(signal?.reason ?? new Error('aborted'));
  };
  const incoming = extract[Symbol.asyncIterator](); // listening before any data is fed
  const feeding = feed(source, extract, fed);
  let entries = 0;
  let carried = 0;
  let end = 0;
  let partial: Writing | undefined;
  try {
    signal?.throwIfAborted();
    signal?.addEventListener('abort', onAbort, { once: true });
    await placer.io([], 'make directory', (abs) => mkdir(abs, { recursive: true }));
    for (let next = await incoming.next(); !next.done; next = await incoming.next()) {
      const entry = next.value;
      const { header } = entry;
      const size = header.size ?? 0;
      entries += 1;
      carried += size;
      end = entry.offset + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
      if (entries > maxEntries) {
        throw new TgError('E_OUTPUTS', `outputs from ${from}: more than ${maxEntries} entries; stopped after ${report.files} files`);
      }
      if (carried > maxBytes) {
        throw new TgError('E_OUTPUTS', `outputs from ${from}: more than ${maxBytes} bytes at ${header.name}; stopped after ${report.files} files`);
      }
      const refusal = await place(placer, entry, report, (p) => (partial = p));
      partial = undefined;
      if (refusal !== undefined) {
        report.refused.push({ name: header.name, reason: refusal });
        await drain(entry);
      }
    }
    await feeding;
    if (fed.bytes < end + BLOCK) throw new Error('no end-of-archive marker');
    return report;
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof TgError) throw error;
    const cut = partial ? `; ${partial.path} is incomplete (${partial.written} of ${partial.size} bytes)` : '';
    throw new TgError(
      'E_OUTPUTS',
      `outputs from ${from}: stream ended early after ${report.files} files${cut}: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!source.readableEnded) source.destroy();
    if (!extract.destroying) extract.destroy();
    await feeding;
  }
}

// Write `source` into `extract` with backpressure, counting the bytes; a failure destroys `extract`.
async function feed(source: Readable, extract: Extract, fed: { bytes: number }): Promise<void> {
  try {
    for await (const chunk of source) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      fed.bytes += buffer.byteLength;
      if (extract.destroying) return;
      if (!extract.write(buffer)) await drained(extract);
    }
    if (!extract.destroying) extract.end(undefined);
  } catch (error) {
    if (!extract.destroying) extract.destroy(error as Error);
  }
}

// Read an entry's contents to the end without keeping them.
async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const chunk of entry) void chunk;
}

type Entry = Extract extends AsyncIterable<infer E> ? E : never;

// Put one entry on disk; the reason it was refused, or undefined when it was written.
async function place(placer: Placer, entry: Entry, report: ExtractReport, writing: (p: Writing) => void): Promise<string | undefined> {
  const { header } = entry;
  const parts = pathParts(header.name);
  if (typeof parts === 'string') return parts;
  if (placer.outside(parts)) return 'lands outside the destination';
  switch (header.type) {
    case 'directory': {
      const refusal = await placer.directory(parts);
      if (refusal !== undefined) return refusal;
      await placer.io(parts, 'set the mode of', (abs) => chmod(abs, ((header.mode ?? 0o755) & 0o755) | 0o700));
      report.dirs += 1;
      await drain(entry);
      return undefined;
    }
    case 'file': {
      const refusal = await placer.directory(parts.slice(0, -1));
      if (refusal !== undefined) return refusal;
      return placer.file(parts, header, entry, report, writing);
    }
    case 'symlink':
      return `symlink to ${JSON.stringify(header.linkname ?? '')}: links are not extracted`;
    case 'link':
      return `hardlink to ${JSON.stringify(header.linkname ?? '')}: links are not extracted`;
    default:
      return `${header.type ?? 'unknown'} entries are not extracted`;
  }
}

// The segments of an archive name, or why the name is refused.
function pathParts(name: string): string[] | string {
  if (name.includes('\0')) return 'name contains NUL';
  if (name.startsWith('/')) return 'absolute path';
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) return 'path contains a .. segment';
  if (parts.length === 0) return 'empty path';
  return parts;
}

// What a local path is, for messages.
function kind(st: { isSymbolicLink(): boolean; isDirectory(): boolean; isFile(): boolean }): string {
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a file';
  return 'a special file';
}

/** Makes directories and files under one root, never through a link. */
class Placer {
  /** Relative paths checked or made as real directories; only this extraction writes under root. */
  private readonly dirs = new Set<string>();

  constructor(private readonly root: string) {}

  // True when `parts` would resolve outside the root.
  outside(parts: string[]): boolean {
    return !resolve(this.root, ...parts).startsWith(this.root + sep);
  }

  // Run a file operation on `parts`; failures are E_OUTPUTS naming the local path.
  async io<T>(parts: string[], what: string, op: (abs: string) => Promise<T>): Promise<T> {
    const abs = join(this.root, ...parts);
    try {
      return await op(abs);
    } catch (error) {
      throw new TgError('E_OUTPUTS', `outputs: cannot ${what} ${abs}: ${(error as Error).message}`, { cause: error });
    }
  }

  // Make each of `parts`' prefixes a real directory; the reason when one exists as something else.
  async directory(parts: string[]): Promise<string | undefined> {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.dirs.has(rel)) continue;
      const abs = join(this.root, rel);
      let st = await lstatOrUndefined(abs);
      if (!st) {
        await this.io(parts.slice(0, i), 'make directory', (p) => mkdir(p, { mode: 0o755 }).catch(ignoreCode('EEXIST')));
        st = await lstatOrUndefined(abs);
      }
      if (!st) return `${rel} vanished as it was made`;
      if (!st.isDirectory()) return `${rel} exists locally as ${kind(st)}`;
      this.dirs.add(rel);
    }
    return undefined;
  }

  // Create a new file at `parts` without following a link: its descriptor, `exists`, or the errno of a refusal.
  async create(parts: string[], mode: number): Promise<number | string> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const abs = join(this.root, ...parts);
    try {
      return await openFd(abs, flags, mode);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return 'exists';
      if (code === 'ELOOP' || code === 'EISDIR' || code === 'ENAMETOOLONG') return code;
      throw new TgError('E_OUTPUTS', `outputs: cannot create ${abs}: ${(error as Error).message}`, { cause: error });
    }
  }

  // Write a regular file's contents from `entry`; the reason when its path is taken by something else.
  async file(
    parts: string[],
    header: Header,
    entry: Entry,
    report: ExtractReport,
    writing: (p: Writing) => void,
  ): Promise<string | undefined> {
    const abs = join(this.root, ...parts);
    const mode = ((header.mode ?? 0o644) & 0o755) | 0o600;
    let fd = await this.create(parts, mode);
    if (fd === 'exists') {
      const st = await lstatOrUndefined(abs);
      if (st && !st.isFile()) return `exists locally as ${kind(st)}`;
      await this.io(parts, 'replace', (p) => unlink(p).catch(ignoreCode('ENOENT')));
      fd = await this.create(parts, mode);
    }
    if (typeof fd === 'string') return `cannot create: ${fd}`;
    const opened = fd;
    const progress: Writing = { path: abs, written: 0, size: header.size ?? 0 };
    writing(progress);
    try {
      await this.io(parts, 'set the mode of', () => fchmodFd(opened, mode));
      for await (const chunk of entry) {
        await this.io(parts, 'write', () => writeAll(opened, chunk as Buffer));
        progress.written += (chunk as Buffer).byteLength;
      }
    } finally {
      await closeFd(opened);
    }
    if (progress.written !== progress.size) throw new Error(`${abs} got ${progress.written} of ${progress.size} bytes`);
    report.files += 1;
    report.bytes += progress.written;
    return undefined;
  }
}

// Write all of `buffer` at the descriptor's position.
async function writeAll(fd: number, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.byteLength) {
    const { bytesWritten } = await writeFd(fd, buffer, offset, buffer.byteLength - offset);
    offset += bytesWritten;
  }
}

// lstat, with undefined for a path that does not exist.
async function lstatOrUndefined(abs: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(abs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TgError('E_OUTPUTS', `outputs: cannot stat ${abs}: ${(error as Error).message}`, { cause: error });
  }
}

// A rejection handler that swallows one errno code.
function ignoreCode(code: string): (error: unknown) => void {
  return (error) => {
    if ((error as NodeJS.ErrnoException).code !== code) throw error;
  };
}
