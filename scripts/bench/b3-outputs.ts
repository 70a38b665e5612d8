// B3: pulling an outputs dir home from a lab host. Ours: one ssh2 connection, a
// node process (the closure's node) packing the dir with packOutputs (the code the
// agent runs, bundled into one file as the package bundles the agent) onto an exec
// channel, extracted here with extractOutputs (the code the runner runs).
// Baseline: scp -r, as the prototype pulled outputs.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { build as esbuild } from 'esbuild';
import { execa } from 'execa';
import { copyClosure } from '../../helpers/closure/copy.ts';
import { extractOutputs, packOutputs } from '../../helpers/outputs/tar.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import type { Build } from './lab.ts';
import { extractSync } from './sync-extract.ts';
import { log, median, repoRoot, tempDir } from './util.ts';

const REMOTE_ROOT = '/tmp/bench-b3';
const REMOTE_PACKER = '/tmp/bench-pack.cjs';
const REMOTE_SKETCH = '/tmp/bench-sync-pack.cjs';

// Bundle `entry` and its dependencies into one script and put it on the host at `remote`.
async function install(host: string, entry: string, remote: string): Promise<void> {
  const dir = await tempDir('b3-pack');
  const outfile = join(dir, 'pack.cjs');
  await esbuild({ entryPoints: [join(repoRoot, entry)], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  await execa('ssh', [host, `cat > ${remote}`], { inputFile: outfile, timeout: 60_000 });
}

export interface B3Size {
  files: number;
  bigBytes: number;
}

/** How ours spent one pull: connecting, until the first tar byte, and the whole. */
export interface PullProfile {
  connectMs: number;
  firstByteMs: number;
  totalMs: number;
}

/** The small files' tar made and unpacked on this machine, without SSH (medians of 3):
 * our code, GNU tar as the file system's floor, and a sketch of packOutputs with synchronous reads. */
export interface LocalTarProfile {
  files: number;
  tarBytes: number;
  packMs: number;
  extractMs: number;
  gnuCreateMs: number;
  gnuExtractMs: number;
  /** scripts/bench/sync-pack.ts, bundled, in its own node process, to /dev/null. */
  syncPackMs: number;
  /** scripts/bench/sync-extract.ts, in this process, from the tar file. */
  syncExtractMs: number;
}

// Time `step` three times and keep the median; `reset` runs untimed before each.
async function median3(step: () => Promise<unknown>, reset: () => Promise<unknown> = async () => {}): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    await reset();
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  return median(times);
}

// Pack `dir` into a file and extract that file elsewhere, ours and GNU tar's, each timed.
async function localTar(dir: string, node: string): Promise<Omit<LocalTarProfile, 'files'>> {
  const work = await tempDir('b3-local');
  const tarFile = join(work, 'out.tar');
  const dest = join(work, 'x');
  const clear = () => rm(dest, { recursive: true, force: true });
  const packMs = await median3(() => pipeline(packOutputs(dir), createWriteStream(tarFile)));
  const extractMs = await median3(() => extractOutputs(createReadStream(tarFile, { highWaterMark: 1 << 20 }), dest), clear);
  // Into a file: GNU tar skips reading the files when its archive is /dev/null.
  const gnuCreateMs = await median3(() => execa('tar', ['-cf', join(work, 'gnu.tar'), '-C', dir, '.']));
  const gnuExtractMs = await median3(() => execa('tar', ['-xf', tarFile, '-C', dest]), async () => {
    await clear();
    await mkdir(dest);
  });
  const sketch = join(work, 'sync-pack.cjs');
  await esbuild({ entryPoints: [join(repoRoot, 'scripts/bench/sync-pack.ts')], outfile: sketch, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  const syncPackMs = await median3(() => execa(node, [sketch, dir], { stdout: 'ignore', env: { PATH: process.env.PATH! }, extendEnv: false }));
  const syncExtractMs = await median3(() => extractSync(createReadStream(tarFile, { highWaterMark: 1 << 20 }), dest), clear);
  const tarBytes = (await stat(tarFile)).size;
  await rm(work, { recursive: true, force: true });
  return { tarBytes, packMs, extractMs, gnuCreateMs, gnuExtractMs, syncPackMs, syncExtractMs };
}

// Count the regular files and their bytes under `dir`.
async function tally(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

// Put `small/` (files in dirs of 100, 200 B to 4 KiB each) and `big/file` on the host.
async function prepare(host: string, size: B3Size, node: string): Promise<{ small: { files: number; bytes: number }; big: { files: number; bytes: number }; local: LocalTarProfile }> {
  const local = await tempDir('b3-src');
  let bytes = 0;
  for (let i = 0; i < size.files; i++) {
    const dir = join(local, 'small', `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) await mkdir(dir, { recursive: true });
    const data = randomBytes(200 + ((i * 7919) % 3897));
    bytes += data.length;
    await writeFile(join(dir, `f${String(i).padStart(5, '0')}.txt`), data);
  }
  await execa('sh', ['-c', `tar -C '${local}' -cf - small | ssh ${host} 'rm -rf ${REMOTE_ROOT} && mkdir -p ${REMOTE_ROOT} && tar -C ${REMOTE_ROOT} -xf -'`], { stdin: 'ignore', timeout: 300_000 });
  await execa('ssh', [host, `mkdir -p ${REMOTE_ROOT}/big && head -c ${size.bigBytes} /dev/urandom > ${REMOTE_ROOT}/big/file && sync`], { stdin: 'ignore', timeout: 300_000 });
  const localProfile = { ...(await localTar(join(local, 'small'), node)), files: size.files };
  await rm(local, { recursive: true, force: true });
  return { small: { files: size.files, bytes }, big: { files: 1, bytes: size.bigBytes }, local: localProfile };
}

// Ours: pack `remoteDir` on the host with packOutputs (or `packer`), extract into `dest`.
async function pullOurs(
  build: Build,
  host: string,
  remoteDir: string,
  dest: string,
  expect: { files: number; bytes: number },
  sketches: { pack?: boolean; extract?: boolean } = {},
): Promise<PullProfile> {
  const t0 = performance.now();
  const ssh = await openSsh(await resolveSshTarget(host));
  const connectMs = performance.now() - t0;
  try {
    const channel = await ssh.exec(`exec ${build.node} ${sketches.pack ? REMOTE_SKETCH : REMOTE_PACKER} ${remoteDir}`);
    let firstByteMs = 0;
    channel.once('data', () => (firstByteMs = performance.now() - t0));
    let err = '';
    channel.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const exited = new Promise<number | null>((resolve) => channel.once('exit', (c: number | null) => resolve(c)));
    const report = sketches.extract ? await extractSync(channel, dest) : await extractOutputs(channel, dest, { from: host });
    const exit = await exited;
    const totalMs = performance.now() - t0;
    if (exit !== 0) throw new Error(`B3: the remote packer exited ${exit}: ${err}`);
    if (report.files !== expect.files || report.bytes !== expect.bytes) throw new Error(`B3: ours pulled ${report.files} files, ${report.bytes} bytes; expected ${expect.files}, ${expect.bytes}`);
    return { connectMs, firstByteMs, totalMs };
  } finally {
    await ssh.close();
  }
}

// Baseline: scp -r host:remoteDir dest.
async function pullScp(host: string, remoteDir: string, dest: string, expect: { files: number; bytes: number }): Promise<number> {
  const t0 = performance.now();
  await execa('scp', ['-r', `${host}:${remoteDir}`, dest], { stdin: 'ignore', timeout: 600_000 });
  const ms = performance.now() - t0;
  const got = await tally(dest);
  if (got.files !== expect.files || got.bytes !== expect.bytes) throw new Error(`B3: scp pulled ${got.files} files, ${got.bytes} bytes; expected ${expect.files}, ${expect.bytes}`);
  return ms;
}

/** Whole pulls of the small files: ours as is, with the sketch packer, and with both sketches. */
export interface PullVariants {
  now: number[];
  syncPack: number[];
  syncBoth: number[];
}

export async function benchOutputs(
  build: Build,
  host: string,
  pairs: number,
  size: B3Size,
): Promise<{ rows: Row[]; profiles: Record<string, PullProfile>; local: LocalTarProfile; variants: PullVariants }> {
  log(`B3: making ${size.files} small files and a ${size.bigBytes / 1e6} MB file on ${host}`);
  {
    // The packer runs with the closure's node: make sure the host has it.
    const ssh = await openSsh(await resolveSshTarget(host));
    await copyClosure(ssh, host, build.plan).finally(() => ssh.close());
    await install(host, 'scripts/bench/remote-pack.ts', REMOTE_PACKER);
    await install(host, 'scripts/bench/sync-pack.ts', REMOTE_SKETCH);
  }
  const expected = await prepare(host, size, build.node);
  const rows: Row[] = [];
  const profiles: Record<string, PullProfile> = {};
  let variants: PullVariants = { now: [], syncPack: [], syncBoth: [] };
  const cases = [
    { key: 'small' as const, id: 'B3 small files', what: `${size.files} files of 0.2-4 KiB in ${Math.ceil(size.files / 100)} dirs`, goal: 0.33 },
    { key: 'big' as const, id: 'B3 big file', what: `one file of ${size.bigBytes / 1e6} MB`, goal: 1.1 },
  ];
  for (const c of cases) {
    const remoteDir = `${REMOTE_ROOT}/${c.key}`;
    const expect = expected[c.key];
    const work = await tempDir(`b3-${c.key}`);
    const dest = join(work, 'got');
    const clear = () => rm(dest, { recursive: true, force: true });
    const ourProfiles: PullProfile[] = [];
    // Untimed: one pull each, so both read the remote files from the page cache.
    await pullScp(host, remoteDir, dest, expect);
    await clear();
    await pullOurs(build, host, remoteDir, dest, expect);
    await clear();
    const [baseline, ours] = await alternate(`${c.id} (scp / ours)`, pairs, [
      () => pullScp(host, remoteDir, dest, expect),
      async () => {
        const p = await pullOurs(build, host, remoteDir, dest, expect);
        ourProfiles.push(p);
        return p.totalMs;
      },
    ], clear);
    if (c.key === 'small') {
      const [now, syncPack, syncBoth] = await alternate('B3 small files: ours / sync-pack sketch / both sketches', Math.max(2, pairs), [
        async () => (await pullOurs(build, host, remoteDir, dest, expect)).totalMs,
        async () => (await pullOurs(build, host, remoteDir, dest, expect, { pack: true })).totalMs,
        async () => (await pullOurs(build, host, remoteDir, dest, expect, { pack: true, extract: true })).totalMs,
      ], clear);
      variants = { now: now!, syncPack: syncPack!, syncBoth: syncBoth! };
    }
    await rm(work, { recursive: true, force: true });
    profiles[c.id] = {
      connectMs: median(ourProfiles.map((p) => p.connectMs)),
      firstByteMs: median(ourProfiles.map((p) => p.firstByteMs)),
      totalMs: median(ourProfiles.map((p) => p.totalMs)),
    };
    rows.push({
      id: c.id,
      what: c.what,
      ratioIs: 'ours / scp (time)',
      baselineLabel: 'scp -r',
      oursLabel: 'packOutputs → ssh2 → extractOutputs',
      baseline: baseline!,
      ours: ours!,
      ratios: pairRatios(ours!, baseline!),
      goal: { op: '<=', value: c.goal },
      bytes: expect.bytes,
      remarks: [],
    });
  }
  await execa('ssh', [host, `rm -rf ${REMOTE_ROOT} ${REMOTE_PACKER} ${REMOTE_SKETCH}`], { stdin: 'ignore', reject: false, timeout: 60_000 });
  return { rows, profiles, local: expected.local, variants };
}
