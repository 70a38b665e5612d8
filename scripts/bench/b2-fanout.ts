// B2: fan-out. N instances of `ok` on 4 lab hosts with cold stores, started by tg-run
// (local:exec without a daemon) for both sides: ours is the built remote-runner, the
// baseline an artifact whose bin/remote-runner is the prototype's flow (baseline.sh).
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { JOB_FILE } from '../../helpers/closure/job-description.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { labUp, type Build } from './lab.ts';
import { baselineScript, log, median, repoRoot, tempDir } from './util.ts';

/** One tg-run: its wall time, how many instances succeeded, and the CPU the machine spent. */
interface FanoutRun {
  ms: number;
  succeeded: number;
  summary: string;
  /** Busy CPU seconds of the whole machine (every lab host included) during the run. */
  cpuBusyS: number;
}

/** Where a B2 run's time went: per-instance medians of each phase, and the machine's CPU. */
export interface B2Profile {
  ours: Record<string, number>;
  baseline: Record<string, number>;
  cpu: { ours: number[]; baseline: number[]; capacityS: { ours: number[]; baseline: number[] } };
}

// Busy and total CPU time of the machine so far, in seconds (from /proc/stat).
async function cpuTimes(): Promise<{ busy: number; all: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const hz = 100;
  return { busy: (user + nice + system + irq + softirq + steal) / hz, all: (user + nice + system + idle + iowait + irq + softirq + steal) / hz };
}

// Medians of tg-run's per-instance DURATION, COPY and RUN columns (seconds in, ms out).
function phaseMedians(summary: string): Record<string, number> {
  const lines = summary.split('\n');
  const head = lines[0]?.split(/\s{2,}/) ?? [];
  const out: Record<string, number> = {};
  for (const col of ['DURATION', 'COPY', 'RUN', 'PULL']) {
    const c = head.indexOf(col);
    if (c < 0) continue;
    const values = lines.slice(1).map((l) => l.split(/\s{2,}/)[c]).filter((v): v is string => !!v && /^[\d.]+s$/.test(v)).map((v) => Number(v.slice(0, -1)) * 1000);
    if (values.length) out[col.toLowerCase()] = median(values);
  }
  return out;
}

// The instances that succeeded, from tg-run's count line ("16 instances: 15 success, 1 failure").
function successes(output: string): number {
  const line = /^\d+ instances?: .*$/m.exec(output)?.[0] ?? '';
  return Number(/(\d+) success/.exec(line)?.[1] ?? 0);
}

async function tgRun(useBuild: string, instances: number, hosts: string[]): Promise<FanoutRun & { capacityS: number }> {
  const outputs = await tempDir('fanout');
  const runners = JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })));
  const args = ['single', '--plan', '.', '--testcase', 'ok', '--instances', String(instances), '--use-build', useBuild, '--outputs-dir', outputs, '--timeout', '300s', '--test-param', `remote-runners=${runners}`];
  const c0 = await cpuTimes();
  const t0 = performance.now();
  const r = await execa('node', [join(repoRoot, 'bin/tg-run.js'), ...args], { cwd: repoRoot, env: { PATH: process.env.PATH! }, extendEnv: false, reject: false, stdin: 'ignore', timeout: 400_000 });
  const ms = performance.now() - t0;
  const c1 = await cpuTimes();
  const stdout = String(r.stdout);
  const header = stdout.split('\n').findIndex((l) => l.startsWith('INSTANCE'));
  const summary = header < 0 ? '' : stdout.split('\n').slice(header).join('\n');
  return {
    ms,
    succeeded: successes(`${stdout}\n${String(r.stderr)}`),
    summary: summary || String(r.stderr).split('\n').slice(-10).join('\n'),
    cpuBusyS: c1.busy - c0.busy,
    capacityS: c1.all - c0.all,
  };
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
  const side = (name: 'baseline' | 'ours') => async (): Promise<number> => {
    await labUp(hostCount);
    const useBuild = name === 'ours' ? build.runner : await baselineArtifact(build, hosts);
    if (name === 'baseline') baselineDirs.push(useBuild);
    const run = await tgRun(useBuild, instances, hosts);
    cpu[name].push(run.cpuBusyS);
    cpu.capacityS[name].push(run.capacityS);
    if (name === 'ours') oursPhases.push(phaseMedians(run.summary));
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
    oursLabel: 'tg-run + remote-runner',
    baseline: baseline!,
    ours: ours!,
    ratios: pairRatios(ours!, baseline!),
    goal: { op: '<=', value: 0.25 },
    remarks,
  };
  return { row, profile: { ours: oursProfile, baseline: await stepMedians(baselineDirs), cpu } };
}
