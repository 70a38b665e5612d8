// --collect: pack a run's outputs as `<run>.tgz` with entries `<run>/<group>/<i>/...`.
import { createWriteStream, createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

async function* walk(dir: string, rel: string): AsyncGenerator<{ abs: string; rel: string }> {
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const abs = join(dir, entry.name);
    const r = `${rel}/${entry.name}`;
    yield { abs, rel: r };
    if (entry.isDirectory()) yield* walk(abs, r);
  }
}

// Write `runDir`'s tree to `file` as a gzipped tar rooted at `runId/`.
export async function collectRun(runDir: string, runId: string, file: string): Promise<void> {
  const pack = tar.pack();
  const writing = pipeline(pack, createGzip(), createWriteStream(file));
  pack.entry({ name: `${runId}/`, type: 'directory', mode: 0o755 });
  for await (const { abs, rel } of walk(runDir, runId)) {
    const st = await lstat(abs);
    const header = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) pack.entry({ ...header, name: `${rel}/`, type: 'directory' });
    else if (st.isSymbolicLink()) pack.entry({ ...header, type: 'symlink', linkname: await readlink(abs) });
    else if (st.isFile()) {
      const entry = pack.entry({ ...header, type: 'file', size: st.size });
      await pipeline(createReadStream(abs), entry);
    }
  }
  pack.finalize();
  await writing;
}
