// B4': the plan's real closure (the app: node and one bundle) to one cold host on a
// link shaped as a network (100 Mbit/s, 20 ms round trip): ours (copyClosure over our
// own SSH session, compression chosen by its own measurement of the link) against
// `nix copy --to ssh://host` and `nix-copy-closure --gzip --to host`. The host's
// store loses the closure after every run, so each run copies to a cold store.
import { copyClosure, type CopyReport } from '../../helpers/closure/copy.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { closureSize, type Build, type ClosureSize } from './lab.ts';
import { counted, dropFromHost, linkTo, withShaping, type LinkShape } from './shaping.ts';
import { log, must, nixEnv } from './util.ts';

export const B4P_LINK: LinkShape = { rate: '100mbit', delay: '20ms' };

/** One run of a side: its wall time and the bytes its copy put on the host's link. */
export interface LinkRun {
  ms: number;
  /** What the host's tbf sent toward the host during the run: the stream, SSH and TCP/IP framing. */
  wireBytes: number;
}

export type B4pSide = 'nix copy' | 'nix-copy-closure --gzip' | 'ours';

/** B4''s record: the link, the closure, every run of each side, and what ours reported. */
export interface B4pProfile {
  host: string;
  link: LinkShape;
  closure: ClosureSize;
  runs: Record<B4pSide, LinkRun[]>;
  /** copyClosure's own reports: bytes it sent (compressed when it was) and its compression note. */
  reports: Array<Pick<CopyReport, 'bytes' | 'compression' | 'ms'>>;
}

async function nixCopy(host: string, root: string): Promise<void> {
  await must('nix', ['copy', '--to', `ssh://${host}`, root], { env: nixEnv, timeout: 600_000 });
}

// nix-copy-closure's --gzip asks its ssh for compression (`ssh -C`: zlib inside the SSH stream).
async function nixCopyClosure(host: string, root: string): Promise<void> {
  await must('nix-copy-closure', ['--gzip', '--to', host, root], { env: nixEnv, timeout: 600_000 });
}

async function ours(host: string, root: string, expect: number): Promise<CopyReport> {
  const signal = AbortSignal.timeout(600_000);
  const ssh = await openSsh(await resolveSshTarget(host, { signal }), { signal });
  try {
    const report = await copyClosure(ssh, host, root, { signal });
    if (report.missing !== expect) throw new Error(`B4': copyClosure sent ${report.missing} paths where the host lacked ${expect}`);
    return report;
  } finally {
    await ssh.close();
  }
}

// The closure's paths in the local store.
async function closurePaths(root: string): Promise<string[]> {
  return (await must('nix-store', ['--query', '--requisites', root], { env: nixEnv })).stdout.split('\n').filter(Boolean);
}

export async function benchRealCopy(build: Build, host: string, pairs: number): Promise<{ row: Row; profile: B4pProfile }> {
  const root = build.plan;
  const paths = await closurePaths(root);
  const closure = await closureSize([root]);
  const runs: B4pProfile['runs'] = { 'nix copy': [], 'nix-copy-closure --gzip': [], ours: [] };
  const reports: B4pProfile['reports'] = [];
  // Each side runs timed, and counted on the host's link; the host's store is emptied after it.
  const side = (name: B4pSide, copy: () => Promise<unknown>) => async (): Promise<number> => {
    const run = await counted(linkTo(host), copy);
    runs[name].push({ ms: run.ms, wireBytes: run.wireBytes });
    return run.ms;
  };
  const oursSide = side('ours', async () => {
    const r = await ours(host, root, paths.length);
    reports.push({ bytes: r.bytes, compression: r.compression, ms: r.ms });
  });
  const [nix, ncc, our] = await withShaping([host], B4P_LINK, undefined, async () => {
    await dropFromHost(host, paths);
    // Untimed: every side reads the closure from the page cache.
    await must('sh', ['-c', `nix-store --export ${paths.join(' ')} > /dev/null`], { env: nixEnv });
    return alternate(
      `B4' ${(closure.bytes / 1e6).toFixed(0)} MB closure over ${B4P_LINK.rate}, ${B4P_LINK.delay} (nix copy / nix-copy-closure --gzip / ours)`,
      pairs,
      [side('nix copy', () => nixCopy(host, root)), side('nix-copy-closure --gzip', () => nixCopyClosure(host, root)), oursSide],
      () => dropFromHost(host, paths),
    );
  });
  // The goal is against the faster of the two, pair by pair.
  const faster = nix!.map((n, i) => Math.min(n, ncc![i]!));
  log(`B4': ours sent ${reports.map((r) => `${(r.bytes / 1e6).toFixed(1)} MB (${r.compression})`).join(', ')}`);
  const row: Row = {
    id: "B4'",
    what: `the app's closure (${(closure.bytes / 1e6).toFixed(0)} MB, ${closure.paths} paths) to a cold host, link ${B4P_LINK.rate}, ${B4P_LINK.delay} round trip`,
    ratioIs: 'ours / the faster of the two (time)',
    baselineLabel: 'faster of nix copy, nix-copy-closure --gzip',
    oursLabel: 'copyClosure (compression auto)',
    baseline: faster,
    ours: our!,
    ratios: pairRatios(our!, faster),
    goal: { op: '<=', value: 0.5 },
    bytes: closure.bytes,
    remarks: [],
  };
  return { row, profile: { host, link: B4P_LINK, closure, runs, reports } };
}
