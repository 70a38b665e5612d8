// B9: substituters first. A closure of 10 store paths of random data, half of it (by
// bytes) in the lab's binary cache: ours (copyClosure) to a host whose substituter is
// that cache, against ours to a host without one. Both links are shaped as a network
// (100 Mbit/s, 20 ms round trip), so compression is chosen as it would be there (random
// data does not compress). The figure is the bytes this machine sent; times are kept too.
import { join } from 'node:path';
import { execa } from 'execa';
import { copyClosure, type CopyReport } from '../../helpers/closure/copy.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, type Row } from './compare.ts';
import { labCommand } from './lab.ts';
import { counted, dropFromHost, linkTo, withShaping, type LinkShape } from './shaping.ts';
import { log, must, nixEnv, onCleanup, tempDir, timed } from './util.ts';

export const B9_LINK: LinkShape = { rate: '100mbit', delay: '20ms' };
/** The lab's binary cache, as every host sees it. */
export const LAB_CACHE = 'file:///var/lib/remote-runner-lab/binary-cache';
const PATHS = 10;

/** One copy: its wall time, what the host's link carried, and copyClosure's report. */
export interface B9Run {
  ms: number;
  wireBytes: number;
  report: Pick<CopyReport, 'closure' | 'missing' | 'substituted' | 'bytes' | 'compression' | 'ms'>;
}

/** B9's record: the closure, what the cache holds of it, and every run of both sides. */
export interface B9Profile {
  link: LinkShape;
  paths: number;
  pathBytes: number;
  cached: number;
  /** How long `scripts/lab cache add` of the cached half took (untimed setup: xz of random data). */
  cacheAddMs: number;
  hosts: { substituter: string; none: string };
  substituter: B9Run[];
  none: B9Run[];
}

// `n` store paths of `bytes` of random data each; deleted from the local store at the end.
async function randomPaths(n: number, bytes: number): Promise<string[]> {
  const dir = await tempDir('b9');
  const paths: string[] = [];
  for (let i = 1; i <= n; i++) {
    const file = join(dir, `bench-b9-${i}`);
    await must('sh', ['-c', `head -c ${bytes} /dev/urandom > '${file}'`]);
    paths.push((await must('nix-store', ['--add', file], { env: nixEnv })).stdout.trim());
  }
  onCleanup(() => dropLocally(paths));
  return paths;
}

const dropLocally = (paths: string[]) => execa('nix-store', ['--delete', ...paths], { env: nixEnv, reject: false, stdin: 'ignore' });

async function ours(host: string, paths: string[]): Promise<CopyReport> {
  const signal = AbortSignal.timeout(600_000);
  const ssh = await openSsh(await resolveSshTarget(host, { signal }), { signal });
  try {
    const report = await copyClosure(ssh, host, paths, { signal });
    if (report.missing + report.substituted !== paths.length) throw new Error(`B9: ${host} got ${report.missing} paths sent and ${report.substituted} substituted of ${paths.length}`);
    return report;
  } finally {
    await ssh.close();
  }
}

export async function benchSubstitute(o: { pathBytes: number; pairs: number; hosts: { substituter: string; none: string } }): Promise<{ row: Row; profile: B9Profile }> {
  const { substituter, none } = o.hosts;
  log(`B9: adding ${PATHS} store paths of ${o.pathBytes / 1e6} MB of random data to the local store`);
  const paths = await randomPaths(PATHS, o.pathBytes);
  const cached = paths.slice(0, PATHS / 2);
  const profile: B9Profile = { link: B9_LINK, paths: PATHS, pathBytes: o.pathBytes, cached: cached.length, cacheAddMs: 0, hosts: o.hosts, substituter: [], none: [] };
  const side = (which: 'substituter' | 'none') => async (): Promise<number> => {
    const host = o.hosts[which];
    const run = await counted(linkTo(host), () => ours(host, paths));
    const { closure, missing, substituted, bytes, compression, ms } = run.value;
    profile[which].push({ ms: run.ms, wireBytes: run.wireBytes, report: { closure, missing, substituted, bytes, compression, ms } });
    return run.ms;
  };
  const cold = async () => {
    await Promise.all([dropFromHost(substituter, paths), dropFromHost(none, paths)]);
  };
  try {
    log(`B9: ${cached.length} of them into the lab's binary cache`);
    profile.cacheAddMs = (await timed(() => labCommand(['cache', 'add', ...cached], 600_000))).ms;
    await labCommand(['substituter', substituter, LAB_CACHE]);
    await labCommand(['substituter', none, 'none']);
    const [without, withCache] = await withShaping([substituter, none], B9_LINK, undefined, async () => {
      await cold();
      // Untimed: both sides read the paths from the page cache.
      await must('sh', ['-c', `nix-store --export ${paths.join(' ')} > /dev/null`], { env: nixEnv });
      return alternate(`B9 ${PATHS} × ${o.pathBytes / 1e6} MB, ${cached.length} in the cache (no substituter / substituter)`, o.pairs, [side('none'), side('substituter')], cold);
    });
    const sent = (runs: B9Run[]) => runs.map((r) => r.report.bytes);
    const ratios = sent(profile.substituter).map((b, i) => b / sent(profile.none)[i]!);
    log(`B9: bytes sent from here, substituter / none: ${ratios.map((r) => r.toFixed(3)).join(', ')}`);
    const row: Row = {
      id: 'B9',
      what: `${PATHS} paths × ${o.pathBytes / 1e6} MB of random data, ${cached.length} of them in the host's substituter, link ${B9_LINK.rate}, ${B9_LINK.delay} round trip`,
      ratioIs: 'bytes sent from here, with substituter / without (ratio of bytes; medians are times)',
      baselineLabel: 'copyClosure, no substituter',
      oursLabel: 'copyClosure, lab cache as substituter',
      baseline: without!,
      ours: withCache!,
      ratios,
      goal: { op: '<=', value: 0.55 },
      bytes: PATHS * o.pathBytes,
      remarks: [],
    };
    return { row, profile };
  } finally {
    await labCommand(['substituter', substituter, 'none']).catch((error: unknown) => log(`B9: ${(error as Error).message}`));
    await cold().catch(() => {});
    await dropLocally(paths);
  }
}
