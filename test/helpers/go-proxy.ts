// A Go module proxy on the file system that serves go/place, this repository's
// Go module for plans, as the public proxy will once it is published. Tests
// that build a plan which imports it put GOPROXY and GONOSUMDB in its way.
import { readdir, readFile, mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { repoRoot } from './tg-run.ts';

export const PLACE_MODULE = 'github.com/remote-runner/remote-runner/go/place';
export const PLACE_VERSION = 'v0.1.0';

// A zip archive of `files` (stored, not compressed), as Go's module zips may be.
function zip(files: Array<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of files) {
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, data);
    central.push(entry, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const size = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(size, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

let made: Promise<Record<string, string>> | undefined;

// The proxy (made once per process); resolves with the environment that uses it.
export function goProxyEnv(): Promise<Record<string, string>> {
  made ??= (async () => {
    const root = join(repoRoot, '.cache', 'goproxy');
    const dir = join(root, PLACE_MODULE, '@v');
    const source = join(repoRoot, 'go', 'place');
    const names = (await readdir(source)).filter((n) => n === 'go.mod' || n.endsWith('.go')).sort();
    const files = await Promise.all(names.map(async (n) => ({ name: `${PLACE_MODULE}@${PLACE_VERSION}/${n}`, data: await readFile(join(source, n)) })));
    await mkdir(dir, { recursive: true });
    const write = async (name: string, data: Buffer | string) => {
      await writeFile(join(dir, `${name}.tmp`), data);
      await rename(join(dir, `${name}.tmp`), join(dir, name));
    };
    await write(`${PLACE_VERSION}.zip`, zip(files));
    await write(`${PLACE_VERSION}.mod`, await readFile(join(source, 'go.mod')));
    await write(`${PLACE_VERSION}.info`, JSON.stringify({ Version: PLACE_VERSION, Time: '2026-11-30T00:00:00Z' }));
    await write('list', `${PLACE_VERSION}\n`);
    return { GOPROXY: `file://${root},${process.env.GOPROXY || 'https://proxy.golang.org,direct'}`, GONOSUMDB: 'github.com/remote-runner/*', GOFLAGS: '-mod=mod' };
  })();
  return made;
}
