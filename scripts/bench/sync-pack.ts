// A sketch of packOutputs with synchronous reads, for B3's profile only: the same walk
// (sorted, depth first, links as links, no special files) and the same tar-stream, but
// each regular file read with openSync/fstatSync/readSync/closeSync. Not a replacement:
// it keeps no size bound and reads every file whole. Packs the dir given as its first
// argument onto stdout.
import fs from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';

const root = process.argv[2];
if (!root) throw new Error('usage: sync-pack <dir>');
const pack = tar.pack();
pack.pipe(process.stdout);

function walk(abs: string, rel: string): void {
  for (const name of fs.readdirSync(abs).sort()) {
    const path = join(abs, name);
    const st = fs.lstatSync(path);
    const header = { name: rel + name, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) {
      pack.entry({ ...header, name: `${header.name}/`, type: 'directory' });
      walk(path, `${header.name}/`);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...header, type: 'symlink', linkname: fs.readlinkSync(path) });
    } else if (st.isFile()) {
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const size = fs.fstatSync(fd).size;
        const data = Buffer.allocUnsafe(size);
        let at = 0;
        while (at < size) {
          const n = fs.readSync(fd, data, at, size - at, at);
          if (n === 0) break;
          at += n;
        }
        pack.entry({ ...header, type: 'file', size: at }, data.subarray(0, at));
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}

walk(root, '');
pack.finalize();
