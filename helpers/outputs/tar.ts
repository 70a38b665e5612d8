// An instance's outputs as the agent sends them, a tar stream, extracted here as
// plain files and directories only (the agent packs them: go/agent/tar.go).
import fs, { constants } from 'node:fs';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tar, { type Extract, type Header } from 'tar-stream';
import { TgError } from '../shared/error.ts';

/** What extractOutputs did: the entries it wrote and the ones it would not. */
export interface ExtractReport {
  /** Regular files written. */
  files: number;
  /** Directory entries extracted (parents made on the way are not counted). */
  dirs: number;
  /** Bytes of file contents written. */
  bytes: number;
  /** Entries skipped, with the archive's name for each and why (the first MAX_REFUSALS, names shortened). */
  refused: Array<{ name: string; reason: string }>;
  /** How many entries were skipped in all. */
  refusedTotal: number;
}

/** Options of extractOutputs. */
export interface ExtractOptions {
  signal?: AbortSignal;
  /** The most content bytes the archive may carry over all its entries; DEFAULT_MAX_OUTPUT_BYTES by default. */
  maxBytes?: number;
  /** The most entries the archive may hold; 1,000,000 by default. */
  maxEntries?: number;
  /** Where the archive comes from, for messages (a host name); `the remote` by default. */
  from?: string;
}

const BLOCK = 512;
const DEFAULT_MAX_ENTRIES = 1_000_000;
/** What one instance may send home unless the run says otherwise: 2 GiB of file contents. */
export const DEFAULT_MAX_OUTPUT_BYTES = 2 * 1024 ** 3;
// The refusal report is bounded: this many entries, each name or link target this long.
const MAX_REFUSALS = 100;
const MAX_NAME_CHARS = 200;
// Runs of zeros this long (or a whole chunk) become holes: sparse files stay sparse.
const HOLE = 64 * 1024;
// Plain descriptors: FileHandle costs several times more per file, which 5,000 small files feel.
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fchmodFd = promisify(fs.fchmod);
const ftruncateFd = promisify(fs.ftruncate);
const writeFd = promisify(fs.write);

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
  const { signal, maxBytes = DEFAULT_MAX_OUTPUT_BYTES, maxEntries = DEFAULT_MAX_ENTRIES } = options;
  const from = options.from ?? 'the remote';
  const root = resolve(dest);
  const report: ExtractReport = { files: 0, dirs: 0, bytes: 0, refused: [], refusedTotal: 0 };
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
        throw new TgError('E_OUTPUTS', `outputs from ${from}: more than ${maxBytes} bytes (the limit) at ${shorten(header.name)}; stopped after ${report.files} files`);
      }
      const refusal = await place(placer, entry, report, (p) => (partial = p));
      partial = undefined;
      if (refusal !== undefined) {
        report.refusedTotal += 1;
        if (report.refused.length < MAX_REFUSALS) report.refused.push({ name: shorten(header.name), reason: refusal });
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
      return `symlink to ${JSON.stringify(shorten(header.linkname ?? ''))}: links are not extracted`;
    case 'link':
      return `hardlink to ${JSON.stringify(shorten(header.linkname ?? ''))}: links are not extracted`;
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
        await this.io(parts, 'write', () => writeSparse(opened, chunk as Buffer, progress.written));
        progress.written += (chunk as Buffer).byteLength;
      }
      // A file that ends in a hole gets its length here.
      await this.io(parts, 'set the length of', () => ftruncateFd(opened, progress.written));
    } finally {
      await closeFd(opened);
    }
    if (progress.written !== progress.size) throw new Error(`${abs} got ${progress.written} of ${progress.size} bytes`);
    report.files += 1;
    report.bytes += progress.written;
    return undefined;
  }
}

// Write `buffer` at `position`, leaving runs of zeros as holes.
async function writeSparse(fd: number, buffer: Buffer, position: number): Promise<void> {
  for (let at = 0; at < buffer.byteLength; at += HOLE) {
    const piece = buffer.subarray(at, at + HOLE);
    if (isZero(piece)) continue;
    let offset = 0;
    while (offset < piece.byteLength) {
      const { bytesWritten } = await writeFd(fd, piece, offset, piece.byteLength - offset, position + at + offset);
      offset += bytesWritten;
    }
  }
}

const ZEROS = Buffer.alloc(HOLE);
const isZero = (piece: Buffer) => piece.equals(piece.byteLength === HOLE ? ZEROS : ZEROS.subarray(0, piece.byteLength));

// A name or link target cut to MAX_NAME_CHARS for messages, saying how long it was.
function shorten(text: string): string {
  return text.length <= MAX_NAME_CHARS ? text : `${text.slice(0, MAX_NAME_CHARS)}… (${text.length} characters)`;
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
