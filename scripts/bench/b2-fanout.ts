// B2: fan-out. N instances of `ok` on 4 lab hosts with cold stores, started by the
// build's tg-run (local:exec without a daemon) for both sides: ours is the built Nix
// artifact (a Go remote-runner per instance, handing its instance to the run's one
// controller), the baseline an artifact whose bin/remote-runner is the prototype's
// flow (baseline.sh).
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { JOB_FILE } from '../../helpers/closure/job-description.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { labUp, type Build } from './lab.ts';
import type { RunMemory } from './run-sampler.ts';
import { phaseMedians, runTgRun, type TgRun } from './tg-run.ts';
import { baselineScript, log, median, tempDir } from './util.ts';

/** Where a B2 run's time went: per-instance medians of each phase, the machine's CPU, and the CPU of each kind of process. */
export interface B2Profile {
  ours: Record<string, number>;
  baseline: Record<string, number>;
  cpu: { ours: number[]; baseline: number[]; capacityS: { ours: number[]; baseline: number[] } };
  /** CPU seconds by kind of process, here and on the hosts, one entry per run. */
  byKind: { ours: Array<RunMemory['cpuS']>; baseline: Array<RunMemory['cpuS']> };
  /** Our copies to each host, every run: what they sent and how (the note of the copy line). */
  copies: HostCopy[];
}

/** One host's copy, from its progress line. */
export interface HostCopy {
  host: string;
  mb: number;
  s: number;
  /** How the stream travelled and why: "uncompressed (trial of …)", "zstd -6 (link … MB/s)", … */
  note: string;
}

// The copy lines of a run's output: "remote-runner: lab-h1 (x86_64-linux): copy, 3 paths, 102.8 MB, in 6.22 s, of 3 in the closure, <note>".
function copyLines(output: string): HostCopy[] {
  const copies: HostCopy[] = [];
  for (const m of output.matchAll(/remote-runner: (\S+) \([^)]*\): copy, [1-9]\d* paths, ([\d.]+) MB, in ([\d.]+) s, of \d+ in the closure, (.*)$/gm)) {
    copies.push({ host: m[1]!, mb: Number(m[2]), s: Number(m[3]), note: m[4]!.trim() });
  }
  return copies;
}

async function tgRun(build: Build, useBuild: string, instances: number, hosts: string[]): Promise<TgRun> {
  const outputs = await tempDir('fanout');
  const runners = JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })));
  const args = ['single', '--plan', '.', '--testcase', 'ok', '--instances', String(instances), '--use-build', useBuild, '--outputs-dir', outputs, '--timeout', '300s', '--test-param', `remote-runners=${runners}`];
  return runTgRun({ tgRun: `${build.tools}/bin/tg-run`, args, env: { PATH: process.env.PATH! }, hosts, instances, boundMs: 400_000, scanEvery: 1 });
}

// An artifact dir whose bin/remote-runner runs the prototype's flow, hosts round robin;
// its instances log their steps to `<dir>/steps.log`. It carries the build's job
// description, which tells tg-run that the artifact places its instances itself, so
// tg-run starts its bin/remote-runner for every instance as it does ours (baseline.sh
// never reads it).
async function baselineArtifact(build: Build, hosts: string[]): Promise<string> {
  const dir = await tempDir('baseline-build');
  await mkdir(join(dir, 'bin'));
  await mkdir(dirname(join(dir, JOB_FILE)), { recursive: true });
  await copyFile(join(build.runner, JOB_FILE), join(dir, JOB_FILE));
  const counter = join(dir, 'seq');
  const entry = join(dir, 'bin/remote-runner');
  await writeFile(entry, `#!/bin/sh\nBENCH_STEP_LOG=${join(dir, 'steps.log')} exec ${baselineScript} --choose ${counter} ${hosts.join(',')} ${build.plan}\n`);
  await chmod(entry, 0o755);
  return dir;
}

// Per-step medians over every instance of the baseline's runs.
async function stepMedians(dirs: string[]): Promise<Record<string, number>> {
  const steps: Record<string, number[]> = {};
  for (const dir of dirs) {
    const text = await readFile(join(dir, 'steps.log'), 'utf8').catch(() => '');
    for (const line of text.split('\n').filter(Boolean)) {
      const [name, ms] = line.split(' ');
      (steps[name!] ??= []).push(Number(ms));
    }
  }
  return Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, median(v)]));
}

export async function benchFanout(build: Build, pairs: number, instances: number, hostCount: number): Promise<{ row: Row; profile: B2Profile }> {
  const hosts = Array.from({ length: hostCount }, (_, i) => `lab-h${i + 1}`);
  const remarks: string[] = [];
  const baselineDirs: string[] = [];
  const oursPhases: Array<Record<string, number>> = [];
  const cpu: B2Profile['cpu'] = { ours: [], baseline: [], capacityS: { ours: [], baseline: [] } };
  const byKind: B2Profile['byKind'] = { ours: [], baseline: [] };
  const copies: HostCopy[] = [];
  const side = (name: 'baseline' | 'ours') => async (): Promise<number> => {
    await labUp(hostCount);
    const useBuild = name === 'ours' ? build.runner : await baselineArtifact(build, hosts);
    if (name === 'baseline') baselineDirs.push(useBuild);
    const run = await tgRun(build, useBuild, instances, hosts);
    cpu[name].push(run.cpuBusyS);
    cpu.capacityS[name].push(run.capacityS);
    byKind[name].push(run.memory.cpuS);
    if (name === 'ours') {
      oursPhases.push(phaseMedians(run.summary));
      copies.push(...copyLines(run.stderr));
    }
    if (run.succeeded !== instances) {
      const note = `${name}: ${run.succeeded} of ${instances} instances succeeded in one run`;
      // A side with no instance that worked has measured nothing; ours must have them all.
      if (name === 'ours' || run.succeeded === 0) throw new Error(`B2: ${note}:\n${run.summary}`);
      log(`B2: ${note}`);
      remarks.push(note);
    }
    return run.ms;
  };
  const [baseline, ours] = await alternate(`B2 fan-out ${instances} instances on ${hostCount} cold hosts (baseline / ours)`, pairs, [side('baseline'), side('ours')]);
  const oursProfile: Record<string, number> = {};
  for (const key of Object.keys(oursPhases[0] ?? {})) oursProfile[key] = median(oursPhases.map((p) => p[key] ?? 0));
  const row: Row = {
    id: 'B2',
    what: `${instances} instances on ${hostCount} hosts, cold stores`,
    ratioIs: 'ours / baseline (time)',
    baselineLabel: 'prototype flow',
    oursLabel: 'tg-run + remote-runner + controller',
    baseline: baseline!,
    ours: ours!,
    ratios: pairRatios(ours!, baseline!),
    goal: { op: '<=', value: 0.25 },
    remarks,
  };
  return { row, profile: { ours: oursProfile, baseline: await stepMedians(baselineDirs), cpu, byKind, copies } };
}
