// B3: pulling an outputs dir home from a lab host. Ours: one ssh2 connection, the
// agent packing the dir on the host (`<agent>/bin/remote-agent pack <dir>`, the code
// that packs an instance's outputs) onto an exec channel, extracted here with
// extractOutputs (the code the runner runs). Baseline: scp -r, as the prototype pulled outputs.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { copyClosure } from '../../helpers/closure/copy.ts';
import { extractOutputs } from '../../helpers/outputs/tar.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import type { Build } from './lab.ts';
import { extractSync } from './sync-extract.ts';
import { log, median, tempDir } from './util.ts';

const REMOTE_ROOT = '/tmp/bench-b3';

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
 * ours, GNU tar as the file system's floor, and a sketch of extractOutputs with synchronous writes. */
export interface LocalTarProfile {
  files: number;
  tarBytes: number;
  /** `remote-agent pack` (the build's agent) as a child process, into a file. */
  packMs: number;
  /** extractOutputs, in this process, from that file. */
  extractMs: number;
  /** `tar -cf <file>` as a child process. */
  gnuCreateMs: number;
  /** `tar -xf` of the agent's tar. */
  gnuExtractMs: number;
  /** scripts/bench/sync-extract.ts, in this process, from the agent's tar. */
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

// `remote-agent pack <dir>` with the file `out` as its stdout, written by the agent itself
// as GNU tar writes its archive (execa's `{ file }` target would pipe every byte through this process).
async function packInto(agent: string, dir: string, out: string): Promise<void> {
  const fd = openSync(out, 'w');
  try {
    const child = spawn(agent, ['pack', dir], { stdio: ['ignore', fd, 'pipe'], timeout: 300_000 });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (code !== 0) throw new Error(`B3: ${agent} pack ${dir} exited ${code ?? signal}: ${stderr.trim()}`);
  } finally {
    closeSync(fd);
  }
}

// Pack `dir` into a file and extract that file elsewhere, ours and GNU tar's, each timed.
async function localTar(dir: string, agent: string, expect: { files: number; bytes: number }): Promise<Omit<LocalTarProfile, 'files'>> {
  const work = await tempDir('b3-local');
  const tarFile = join(work, 'out.tar');
  const dest = join(work, 'x');
  const clear = () => rm(dest, { recursive: true, force: true });
  // Into a file, for both packers: GNU tar skips reading the files when its archive is /dev/null.
  const packMs = await median3(() => packInto(`${agent}/bin/remote-agent`, dir, tarFile));
  const checked = (what: string) => (report: { files: number; bytes: number }) => {
    if (report.files !== expect.files || report.bytes !== expect.bytes) throw new Error(`B3: ${what} of the agent's tar gave ${report.files} files, ${report.bytes} bytes; expected ${expect.files}, ${expect.bytes}`);
  };
  const extractMs = await median3(async () => checked('extractOutputs')(await extractOutputs(createReadStream(tarFile, { highWaterMark: 1 << 20 }), dest)), clear);
  const gnuCreateMs = await median3(() => execa('tar', ['-cf', join(work, 'gnu.tar'), '-C', dir, '.']));
  const gnuExtractMs = await median3(() => execa('tar', ['-xf', tarFile, '-C', dest]), async () => {
    await clear();
    await mkdir(dest);
  });
  const syncExtractMs = await median3(async () => checked('the extract sketch')(await extractSync(createReadStream(tarFile, { highWaterMark: 1 << 20 }), dest)), clear);
  const tarBytes = (await stat(tarFile)).size;
  await rm(work, { recursive: true, force: true });
  return { tarBytes, packMs, extractMs, gnuCreateMs, gnuExtractMs, syncExtractMs };
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
async function prepare(host: string, size: B3Size, agent: string): Promise<{ small: { files: number; bytes: number }; big: { files: number; bytes: number }; local: LocalTarProfile }> {
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
  const localProfile = { ...(await localTar(join(local, 'small'), agent, { files: size.files, bytes })), files: size.files };
  await rm(local, { recursive: true, force: true });
  return { small: { files: size.files, bytes }, big: { files: 1, bytes: size.bigBytes }, local: localProfile };
}

// Ours: pack `remoteDir` on the host with `remote-agent pack`, extract into `dest` with
// extractOutputs (or, with `sketch`, with scripts/bench/sync-extract.ts).
async function pullOurs(
  build: Build,
  host: string,
  remoteDir: string,
  dest: string,
  expect: { files: number; bytes: number },
  sketch = false,
): Promise<PullProfile> {
  const t0 = performance.now();
  const ssh = await openSsh(await resolveSshTarget(host));
  const connectMs = performance.now() - t0;
  try {
    const channel = await ssh.exec(`exec ${build.agent}/bin/remote-agent pack ${remoteDir}`);
    let firstByteMs = 0;
    channel.once('data', () => (firstByteMs = performance.now() - t0));
    let err = '';
    channel.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const exited = new Promise<number | null>((resolve) => channel.once('exit', (c: number | null) => resolve(c)));
    const report = sketch ? await extractSync(channel, dest) : await extractOutputs(channel, dest, { from: host });
    const exit = await exited;
    const totalMs = performance.now() - t0;
    if (exit !== 0) throw new Error(`B3: remote-agent pack ${remoteDir} on ${host} exited ${exit}: ${err}`);
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

/** Whole pulls of the small files, alternating: ours as is, and with the extract sketch here. */
export interface PullVariants {
  now: number[];
  syncExtract: number[];
}

export async function benchOutputs(
  build: Build,
  host: string,
  pairs: number,
  size: B3Size,
): Promise<{ rows: Row[]; profiles: Record<string, PullProfile>; local: LocalTarProfile; variants: PullVariants }> {
  log(`B3: making ${size.files} small files and a ${size.bigBytes / 1e6} MB file on ${host}`);
  {
    // The agent packs on the host: its closure goes there as a run puts it there.
    const ssh = await openSsh(await resolveSshTarget(host));
    await copyClosure(ssh, host, build.agent).finally(() => ssh.close());
  }
  const expected = await prepare(host, size, build.agent);
  const rows: Row[] = [];
  const profiles: Record<string, PullProfile> = {};
  let variants: PullVariants = { now: [], syncExtract: [] };
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
      const [now, syncExtract] = await alternate('B3 small files: ours / with the extract sketch', Math.max(2, pairs), [
        async () => (await pullOurs(build, host, remoteDir, dest, expect)).totalMs,
        async () => (await pullOurs(build, host, remoteDir, dest, expect, true)).totalMs,
      ], clear);
      variants = { now: now!, syncExtract: syncExtract! };
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
      oursLabel: 'remote-agent pack → ssh2 → extractOutputs',
      baseline: baseline!,
      ours: ours!,
      ratios: pairRatios(ours!, baseline!),
      goal: { op: '<=', value: c.goal },
      bytes: expect.bytes,
      remarks: [],
    });
  }
  await execa('ssh', [host, `rm -rf ${REMOTE_ROOT}`], { stdin: 'ignore', reject: false, timeout: 60_000 });
  return { rows, profiles, local: expected.local, variants };
}
