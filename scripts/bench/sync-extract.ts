// A sketch of extractOutputs with synchronous writes, for B3's profile only: plain files
// and directories only, names checked as extractOutputs checks them, files created with
// O_EXCL|O_NOFOLLOW and written with openSync/writeSync/closeSync once an entry is whole.
// Not a replacement: no size or entry bounds, no report of refused entries.
import fs from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

const CREATE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

// Extract the tar stream `source` under `dest`; resolves with the files and bytes written.
export function extractSync(source: Readable, dest: string): Promise<{ files: number; bytes: number }> {
  const root = resolve(dest);
  fs.mkdirSync(root, { recursive: true });
  const made = new Set<string>(['']);
  const dir = (rel: string): void => {
    if (made.has(rel)) return;
    dir(rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
    const abs = join(root, rel);
    try {
      fs.mkdirSync(abs, { mode: 0o755 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!fs.lstatSync(abs).isDirectory()) throw new Error(`${rel} is not a directory`);
    made.add(rel);
  };
  const extract = tar.extract();
  let files = 0;
  let bytes = 0;
  extract.on('entry', (header, stream, next) => {
    const parts = header.name.split('/').filter((p) => p !== '' && p !== '.');
    const rel = parts.join('/');
    const ok = !header.name.startsWith('/') && !parts.includes('..') && parts.length > 0 && resolve(root, rel).startsWith(root + sep);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    stream.on('end', () => {
      try {
        if (ok && header.type === 'directory') dir(rel);
        else if (ok && header.type === 'file') {
          dir(parts.slice(0, -1).join('/'));
          const fd = fs.openSync(join(root, rel), CREATE, ((header.mode ?? 0o644) & 0o755) | 0o600);
          try {
            for (const chunk of chunks) fs.writeSync(fd, chunk);
          } finally {
            fs.closeSync(fd);
          }
          files += 1;
          bytes += chunks.reduce((n, c) => n + c.length, 0);
        }
        next();
      } catch (error) {
        next(error as Error);
      }
    });
  });
  return new Promise((resolvePromise, reject) => {
    extract.on('finish', () => resolvePromise({ files, bytes }));
    extract.on('error', reject);
    source.on('error', reject);
    source.pipe(extract);
  });
}
