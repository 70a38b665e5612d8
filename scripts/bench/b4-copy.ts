// B4: closure copy throughput. A store path of random data goes to a lab host whose
// store lacks it: ours (copyClosure over ssh2), raw OpenSSH (`ssh host 'cat > /dev/null'`
// fed the same bytes) and `nix copy --to ssh://host`. The path is deleted from the
// host's store after every run, so each run copies to a cold store.
import { join } from 'node:path';
import { execa } from 'execa';
import { copyClosure } from '../../helpers/closure/copy.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { sshTimed } from './lab.ts';
import { log, median, must, nixEnv, onCleanup, tempDir } from './util.ts';

/** Each part of ours measured alone, in MB/s. */
export type CopyParts = Record<string, number>;

/** B4's profile: the stages' throughputs, and what ours costs when there is nothing to send. */
export interface CopyProfile {
  stages: CopyParts;
  /** ssh -G, connect, list the closure, ask the host: ours with the path already there (median of 3). */
  fixedMs: number;
}

// A store path holding `bytes` of random data (and the file it was made from).
async function randomStorePath(bytes: number): Promise<{ path: string; file: string }> {
  const dir = await tempDir('b4');
  const file = join(dir, `bench-random-${bytes}`);
  await must('sh', ['-c', `head -c ${bytes} /dev/urandom > '${file}'`]);
  const { stdout } = await must('nix-store', ['--add', file], { env: nixEnv });
  const path = stdout.trim();
  onCleanup(() => execa('nix-store', ['--delete', path], { env: nixEnv, reject: false, stdin: 'ignore' }));
  return { path, file };
}

async function ours(host: string, path: string, expectMissing = 1): Promise<number> {
  const t0 = performance.now();
  const signal = AbortSignal.timeout(300_000);
  const ssh = await openSsh(await resolveSshTarget(host, { signal }), { signal });
  try {
    const report = await copyClosure(ssh, host, path, { signal });
    if (report.missing !== expectMissing) throw new Error(`B4: copyClosure sent ${report.missing} paths where ${expectMissing} were missing`);
  } finally {
    await ssh.close();
  }
  return performance.now() - t0;
}

async function nixCopy(host: string, path: string): Promise<number> {
  const t0 = performance.now();
  await must('nix', ['copy', '--to', `ssh://${host}`, path], { env: nixEnv });
  return performance.now() - t0;
}

// MB/s of a step that moves `bytes`.
const rate = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

// Where ours spends its time: each stage of the pipe measured alone.
async function profileParts(host: string, path: string, file: string, bytes: number, dropRemote: () => Promise<void>): Promise<CopyParts> {
  const parts: CopyParts = {};
  const local = async (script: string): Promise<number> => {
    const t0 = performance.now();
    await must('sh', ['-c', script], { env: nixEnv });
    return performance.now() - t0;
  };
  parts['local nix-store --export > /dev/null'] = rate(bytes, median([await local(`nix-store --export ${path} > /dev/null`), await local(`nix-store --export ${path} > /dev/null`)]));
  const nar = `${file}.nar`;
  await must('sh', ['-c', `nix-store --export ${path} > '${nar}'`], { env: nixEnv });
  parts['OpenSSH cat > /dev/null (chacha20-poly1305, the default)'] = rate(bytes, await sshTimed([host, 'cat > /dev/null'], { inputFile: file }));
  parts['OpenSSH -c aes128-gcm@openssh.com cat > /dev/null'] = rate(bytes, await sshTimed(['-c', 'aes128-gcm@openssh.com', host, 'cat > /dev/null'], { inputFile: file }));
  // ssh2 alone: the same file through an exec channel into cat.
  {
    const t0 = performance.now();
    const ssh = await openSsh(await resolveSshTarget(host));
    try {
      const channel = await ssh.exec('cat > /dev/null');
      const done = new Promise<void>((resolve) => channel.once('close', () => resolve()));
      channel.resume(); // the channel closes only once its (empty) output is read
      const { createReadStream } = await import('node:fs');
      createReadStream(file, { highWaterMark: 1 << 20 }).pipe(channel);
      await done;
    } finally {
      await ssh.close();
    }
    parts['ssh2 (this process, aes128-gcm) cat > /dev/null'] = rate(bytes, performance.now() - t0);
  }
  // The remote import alone, from a NAR already on the host (no SSH in the timing).
  await execa('sh', ['-c', `ssh ${host} 'cat > /tmp/bench.nar' < '${nar}'`], { stdin: 'ignore', timeout: 300_000 });
  const r = await execa('ssh', [host, 's=$(date +%s%N); nix-store --import < /tmp/bench.nar > /dev/null; e=$(date +%s%N); rm -f /tmp/bench.nar; echo $(( (e - s) / 1000000 ))'], { stdin: 'ignore', timeout: 300_000 });
  parts['remote nix-store --import from a local file'] = rate(bytes, Number(r.stdout.trim()));
  await dropRemote();
  return parts;
}

// Ours when the host already holds the path: the costs that do not depend on the size.
async function fixedCost(host: string, path: string, dropRemote: () => Promise<void>): Promise<number> {
  await ours(host, path);
  const times = [await ours(host, path, 0), await ours(host, path, 0), await ours(host, path, 0)];
  await dropRemote();
  return median(times);
}

export async function benchCopy(host: string, pairs: number, bytes: number): Promise<{ rows: Row[]; profile: CopyProfile }> {
  log(`B4: adding ${bytes / 1e6} MB of random data to the local store`);
  const { path, file } = await randomStorePath(bytes);
  const dropRemote = async (): Promise<void> => {
    await execa('ssh', [host, `nix-store --delete ${path} >/dev/null 2>&1; nix-store --check-validity ${path} 2>/dev/null && exit 1; exit 0`], { stdin: 'ignore', timeout: 120_000 });
  };
  try {
    await dropRemote();
    // Untimed: one run each, so every side reads the data from the page cache.
    log('B4: warm-up');
    await ours(host, path);
    await dropRemote();
    await nixCopy(host, path);
    await dropRemote();
    await sshTimed([host, 'cat > /dev/null'], { inputFile: file });
    const [raw, our, nix] = await alternate(`B4 copy ${bytes / 1e6} MB (ssh cat / ours / nix copy)`, pairs, [
      () => sshTimed([host, 'cat > /dev/null'], { inputFile: file }),
      () => ours(host, path),
      () => nixCopy(host, path),
    ], dropRemote);
    log('B4: profiling the parts');
    const stages = await profileParts(host, path, file, bytes, dropRemote);
    const fixedMs = await fixedCost(host, path, dropRemote);
    const common = { what: `${bytes / 1e6} MB store path of random data to a cold store`, oursLabel: 'copyClosure', bytes, remarks: [] };
    return {
      rows: [
        { ...common, id: 'B4 vs ssh', ratioIs: 'ours / raw ssh (throughput)', baselineLabel: "ssh host 'cat > /dev/null'", baseline: raw!, ours: our!, ratios: pairRatios(raw!, our!), goal: { op: '>=', value: 0.6 } },
        { ...common, id: 'B4 vs nix copy', ratioIs: 'ours / nix copy (throughput)', baselineLabel: 'nix copy --to ssh://', baseline: nix!, ours: our!, ratios: pairRatios(nix!, our!), goal: { op: '>=', value: 2 } },
      ],
      profile: { stages, fixedMs },
    };
  } finally {
    await dropRemote().catch(() => {});
  }
}
