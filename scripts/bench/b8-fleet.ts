// B8: the app and the agent placed on N cold hosts at once, through the product's
// own multi-host path (Fleet: copies from here, at most DEFAULT_MAX_COPIES at a time,
// and fan-out from hosts that hold the closure), against the same on one host. Every
// host's link is shaped to 100 Mbit/s, and so is this machine's uplink into the lab,
// which every copy from here shares; traffic between hosts does not cross it.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jobFor, JOB_FILE, loadJobDescription, type JobDescription } from '../../helpers/closure/job-description.ts';
import { Fleet } from '../../helpers/remote-runner/fleet.ts';
import { DEFAULT_MAX_COPIES } from '../../helpers/remote-runner/params.ts';
import { startSyncService } from '../../helpers/sync-service/index.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { closureSize, type Build, type ClosureSize } from './lab.ts';
import { readFile } from 'node:fs/promises';
import { busyShare, copyLines, cpuTicks, parseCopyLine, type CopyLine } from './network.ts';
import { dropFromHost, sentOn, UPLINK, withShaping, type LinkShape } from './shaping.ts';
import { log, must, nixEnv } from './util.ts';

export const B8_LINK: LinkShape = { rate: '100mbit' };
export const B8_UPLINK = '100mbit';

/** One placement on a set of hosts. */
export interface FleetRun {
  hosts: number;
  ms: number;
  /** Each host's copy line, as the fleet logged it. */
  copies: CopyLine[];
  /** When each host was ready (placed, forwarded, its agent started), in ms from the start. */
  readyMs: Record<string, number>;
  /** What this machine sent into the lab during the run (the uplink's tbf). */
  uplinkBytes: number;
  /** The fleet's other lines: relays that failed, and the like. */
  other: string[];
  /** How busy this machine's cores were during the run (0 to 1): every host's processes share them. */
  cpuBusy: number;
}

const ticks = async () => cpuTicks(await readFile('/proc/stat', 'utf8'));

/** B8's record: the closure, the shaping, and every run of both sides. */
export interface B8Profile {
  closure: ClosureSize;
  link: LinkShape;
  uplink: string;
  maxCopies: number;
  one: FleetRun[];
  many: FleetRun[];
}

// Place the job on `hosts` through one Fleet, as a run does; resolves when every host is ready.
async function place(description: JobDescription, sync: { host: string; port: number }, hosts: string[]): Promise<FleetRun> {
  const lines: string[] = [];
  const fleet = new Fleet({ description, sync, maxCopies: DEFAULT_MAX_COPIES, log: (line) => lines.push(line.trimEnd()) });
  const readyMs: Record<string, number> = {};
  const before = await sentOn(UPLINK);
  const cpuBefore = await ticks();
  const t0 = performance.now();
  let ms: number;
  let cpuBusy = 0;
  try {
    await Promise.all(
      hosts.map(async (name) => {
        await fleet.host({ name, arch: 'x86_64-linux' });
        readyMs[name] = performance.now() - t0;
      }),
    );
    ms = performance.now() - t0;
  } finally {
    cpuBusy = busyShare(cpuBefore, await ticks());
    await fleet.close();
  }
  const copies = copyLines(lines);
  if (copies.length !== hosts.length) throw new Error(`B8: ${copies.length} copy lines for ${hosts.length} hosts:\n${lines.join('\n')}`);
  const other = lines.filter((line) => parseCopyLine(line) === undefined);
  return { hosts: hosts.length, ms, copies, readyMs, uplinkBytes: (await sentOn(UPLINK)) - before, other, cpuBusy };
}

const summary = (run: FleetRun): string => {
  const relayed = run.copies.filter((c) => c.from).length;
  return `${run.hosts} host${run.hosts === 1 ? '' : 's'} in ${(run.ms / 1000).toFixed(1)} s, ${run.hosts - relayed} from here, ${relayed} relayed, ${(run.uplinkBytes / 1e6).toFixed(0)} MB over the uplink, cores ${Math.round(100 * run.cpuBusy)}% busy`;
};

export async function benchFleetCopy(build: Build, hostCount: number, pairs: number): Promise<{ row: Row; profile: B8Profile }> {
  const hosts = Array.from({ length: hostCount }, (_, i) => `lab-h${i + 1}`);
  const description = await loadJobDescription(join(build.runner, JOB_FILE));
  const job = jobFor(description, 'x86_64-linux');
  // What a placement copies: the app with what it requires, and the agent (as placeOnHost does).
  const roots = [job.app.outPath, ...(job.app.requires ?? []), job.agent.outPath];
  const paths = (await must('nix-store', ['--query', '--requisites', ...roots], { env: nixEnv })).stdout.split('\n').filter(Boolean);
  const closure = await closureSize(roots);
  const cold = () => Promise.all(hosts.map((host) => dropFromHost(host, paths))).then(() => {});
  const profile: B8Profile = { closure, link: B8_LINK, uplink: B8_UPLINK, maxCopies: DEFAULT_MAX_COPIES, one: [], many: [] };
  const service = await startSyncService({ host: '127.0.0.1', port: 0, log: () => {} });
  const sync = { host: '127.0.0.1', port: service.port };
  try {
    const side = (which: 'one' | 'many') => async (): Promise<number> => {
      const run = await place(description, sync, which === 'one' ? hosts.slice(0, 1) : hosts);
      profile[which].push(run);
      log(`B8: ${summary(run)}`);
      return run.ms;
    };
    const [one, many] = await withShaping(hosts, B8_LINK, B8_UPLINK, async () => {
      await cold();
      // Untimed: both sides read the closure from the page cache.
      await must('sh', ['-c', `nix-store --export ${paths.join(' ')} > /dev/null`], { env: nixEnv });
      return alternate(`B8 closure to ${hostCount} hosts against 1 (1 host / ${hostCount} hosts)`, pairs, [side('one'), side('many')], cold);
    });
    // Relays that failed (and fell back to a copy from here) are worth a line each.
    const remarks = [...profile.one, ...profile.many].flatMap((r) => r.other).filter((line) => line.trim() !== '');
    const row: Row = {
      id: 'B8',
      what: `app and agent (${(closure.bytes / 1e6).toFixed(0)} MB) to ${hostCount} cold hosts, each link ${B8_LINK.rate}, uplink ${B8_UPLINK} shared`,
      ratioIs: `ours on ${hostCount} hosts / ours on 1 (time)`,
      baselineLabel: 'Fleet, 1 host',
      oursLabel: `Fleet, ${hostCount} hosts`,
      baseline: one!,
      ours: many!,
      ratios: pairRatios(many!, one!),
      goal: { op: '<=', value: 2 },
      bytes: closure.bytes,
      remarks,
    };
    return { row, profile };
  } finally {
    await Promise.race([service.close(), sleep(5_000)]);
  }
}
