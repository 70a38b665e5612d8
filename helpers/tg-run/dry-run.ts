// tg-run --dry-run: say where each instance would go, what each host lacks, and
// which hosts cannot be reached, without starting a single instance.
import { pickIndex, runnerParams } from '../choose-server/choose.ts';
import { localSystem, type NixSystem } from '../runners/runners.ts';
import { TgError } from '../shared/error.ts';
import { JOB_FILE, jobFor, loadJobDescription, type JobDescription, type SystemJob } from '../closure/job-description.ts';
import { remoteMissing } from '../closure/copy.ts';
import { localClosure, locallyValid, narSize } from '../closure/store.ts';
import { resolveSshTarget } from '../ssh/ssh-config.ts';
import { openSsh } from '../ssh/session.ts';
import type { Artifact } from './build.ts';
import { jobDescriptionFor } from './placement.ts';
import type { RunSpec } from './spec.ts';

/** Where one instance would run. */
export interface Placement {
  seq: number;
  group: string;
  host: string;
  arch: NixSystem;
  build: 'local' | 'remote';
}

/** What one host would need. */
export interface HostPlan {
  host: string;
  arch: NixSystem;
  instances: number;
  state: 'local' | 'up' | 'unreachable' | 'unknown';
  missingPaths?: number;
  missingBytes?: number;
  detail: string;
}

// Placements in sign-up order: the instance that enrols k-th on choose_server gets seq k.
export function placements(spec: RunSpec): Placement[] {
  const out: Placement[] = [];
  let seq = 0;
  for (const group of spec.groups) {
    const { runners, overflow } = runnerParams({ params: group.params });
    for (let i = 0; i < group.instances; i++) {
      seq += 1;
      const runner = runners[pickIndex(seq, runners.length, overflow)]!;
      out.push({ seq, group: group.id, host: runner.name, arch: runner.arch ?? localSystem(), build: runner.build ?? 'local' });
    }
  }
  return out;
}

// The store paths a host of `job.system` needs, and what they are, for the dry run.
async function rootsFor(job: SystemJob, build: 'local' | 'remote'): Promise<{ roots: string[]; why: string }> {
  const remoteBuild = job.app.drvPath !== undefined && (build === 'remote' || (job.system !== localSystem() && !(await locallyValid(job.app.outPath))));
  const app = remoteBuild ? [job.app.drvPath!] : [job.app.outPath, ...(job.app.requires ?? [])];
  return { roots: [...app, job.agent.outPath], why: remoteBuild ? 'derivation closure, built on the host, and the agent' : 'app and agent closures' };
}

async function probeHost(host: string, arch: NixSystem, build: 'local' | 'remote', description: JobDescription | undefined, timeoutMs: number): Promise<Omit<HostPlan, 'instances'>> {
  if (host === 'localhost') return { host, arch, state: 'local', detail: 'runs in place' };
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const placing = description ? await rootsFor(jobFor(description, arch), build) : undefined;
    const ssh = await openSsh(await resolveSshTarget(host, { signal }), { signal, readyTimeoutMs: timeoutMs });
    try {
      if (!placing) return { host, arch, state: 'up', detail: 'reachable; nothing to copy' };
      const closure = await localClosure(placing.roots, signal);
      const missing = await remoteMissing(ssh, host, closure, signal);
      return { host, arch, state: 'up', missingPaths: missing.length, missingBytes: await narSize(missing, signal), detail: `${placing.why}: ${closure.length} paths` };
    } finally {
      await ssh.close();
    }
  } catch (error) {
    if (!(error instanceof TgError) && !signal.aborted) throw error;
    return { host, arch, state: 'unreachable', detail: signal.aborted ? `no answer within ${timeoutMs / 1000} s` : (error as Error).message };
  }
}

// Probe every host the run would use, in parallel.
export async function dryRun(spec: RunSpec, artifact: Artifact, timeoutMs = 10_000): Promise<{ placements: Placement[]; hosts: HostPlan[] }> {
  const placed = placements(spec);
  const description = artifact.placesItself
    ? await loadJobDescription(`${artifact.source}/${JOB_FILE}`)
    : await jobDescriptionFor(spec, artifact, AbortSignal.timeout(600_000));
  const byHost = new Map<string, Placement[]>();
  for (const p of placed) byHost.set(`${p.host}\0${p.arch}`, [...(byHost.get(`${p.host}\0${p.arch}`) ?? []), p]);
  const hosts = await Promise.all(
    [...byHost.values()].map(async (list) => {
      const first = list[0]!;
      const probe = await probeHost(first.host, first.arch, first.build, description, timeoutMs);
      return { ...probe, instances: list.length };
    }),
  );
  return { placements: placed, hosts };
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : `${(bytes / 1e6).toFixed(1)} MB`);

// Render a dry run as two tables.
export function renderDryRun(plan: { placements: Placement[]; hosts: HostPlan[] }): string {
  const table = (rows: string[][]) => {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
  };
  const placementsTable = table([
    ['SEQ', 'GROUP', 'HOST', 'SYSTEM', 'BUILD'],
    ...plan.placements.map((p) => [String(p.seq), p.group, p.host, p.arch, p.build]),
  ]);
  const hostsTable = table([
    ['HOST', 'SYSTEM', 'INSTANCES', 'STATE', 'MISSING PATHS', 'MISSING BYTES', 'DETAIL'],
    ...plan.hosts.map((h) => [h.host, h.arch, String(h.instances), h.state, h.missingPaths === undefined ? '-' : String(h.missingPaths), mb(h.missingBytes), h.detail]),
  ]);
  return `instances, by the order they sign up on choose_server:\n${placementsTable}\n\nhosts:\n${hostsTable}\n`;
}
