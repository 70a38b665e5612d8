// B1: the overhead of one instance of the trivial case `ok` on a lab host whose store
// already holds the closure: our remote-runner against the prototype's flow.
import { execa } from 'execa';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { instanceEnv, runOne, type InstanceRun } from './instance.ts';
import type { Build } from './lab.ts';
import { NODELAY_NODE_OPTIONS, coldConnect, noDelayEffect, startTimes } from './proposals.ts';
import { log, median, nixEnv } from './util.ts';

/** Where one instance's time goes, in ms. */
export interface B1Profile {
  /** Our runner: time from spawn to each progress line, and the phases it reported. */
  ours: Array<{ label: string; at: number }>;
  /** The baseline's steps (median over the pairs). */
  baselineSteps: Record<string, number>;
  /** Single measurements of the parts. */
  parts: Record<string, number>;
  /** The same code with TCP_NODELAY on the SSH socket. */
  noDelay: Awaited<ReturnType<typeof noDelayEffect>>;
  /** Whole runs of ours, as built and with TCP_NODELAY preloaded into the runner, alternately. */
  noDelayRuns: { now: number[]; noDelay: number[] };
  /** The runner's first remote steps in a fresh process. */
  cold: Record<string, number>;
  /** The starts of the instance's process and of the run's controller, each alone. */
  starts: Awaited<ReturnType<typeof startTimes>>;
}

const phaseOf = (line: string): string | undefined => /^remote-runner: \S+ \([^)]*\): (\w+)/.exec(line)?.[1];

// Time `n` runs of a step and keep the median.
async function medianOf(n: number, step: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(await step());
  return median(values);
}

// Run `script` on the host and read the ms it took (timed there, so without SSH). Fails
// unless `expect` accepts its exit code, so a program that is missing cannot pass for a fast one.
async function remoteMs(host: string, script: string, expect: (code: number) => boolean): Promise<number> {
  const wrapped = `s=$(date +%s%N); { ${script} ; } >/dev/null 2>&1; c=$?; e=$(date +%s%N); echo "$c $(( (e - s) / 1000 ))"`;
  const r = await execa('ssh', [host, wrapped], { stdin: 'ignore', timeout: 60_000 });
  const [code, us] = r.stdout.trim().split(' ').map(Number);
  if (code === undefined || us === undefined || !expect(code)) throw new Error(`B1: \`${script.slice(0, 200)}\` on ${host} exited ${code}`);
  return us / 1000;
}

const succeeded = (code: number): boolean => code === 0;
// A usage or validation error: the program ran and refused (126 and 127: it did not run).
const refused = (code: number): boolean => code !== 0 && code < 126;

async function wall(command: string, args: string[], options: Record<string, unknown> = {}): Promise<number> {
  const t0 = performance.now();
  await execa(command, args, { stdin: 'ignore', reject: false, timeout: 60_000, ...options });
  return performance.now() - t0;
}

// Where the time of one instance goes: each part measured on its own.
// A shell word holding `value` exactly.
const shq = (value: string): string => `'${value.replaceAll("'", "'\\''")}'`;

// The app alone: `ok` started on the host (timed there) with an instance's environment,
// its sync service reached through a forward on an open connection.
async function appAlone(build: Build, host: string, syncPort: number): Promise<number> {
  const ssh = await openSsh(await resolveSshTarget(host));
  try {
    const forward = await ssh.forwardIn('127.0.0.1', { host: '127.0.0.1', port: syncPort });
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const env = { ...instanceEnv({ syncPort: forward.port, testcase: 'ok', hosts: [host], outputs: '/tmp', temp: '/tmp' }), PATH: '/usr/bin:/bin' };
      const assignments = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`).join(' ');
      const script = `d=$(mktemp -d); cd "$d"; s=$(date +%s%N); env -i ${assignments} TEST_OUTPUTS_PATH="$d" TEST_TEMP_PATH="$d" ${build.plan}/bin/plan >/dev/null 2>&1; c=$?; e=$(date +%s%N); rm -rf "$d"; echo "$c $(( (e - s) / 1000000 ))"`;
      const r = await ssh.run(script);
      const [code, ms] = r.stdout.trim().split(' ');
      if (code !== '0') throw new Error(`B1: the app alone on ${host} exited ${code}: ${r.stderr}`);
      times.push(Number(ms));
    }
    await forward.close();
    return median(times);
  } finally {
    await ssh.close();
  }
}

async function profileParts(build: Build, host: string, syncPort: number): Promise<Record<string, number>> {
  const parts: Record<string, number> = {};
  parts['OpenSSH: ssh host true (new connection)'] = await medianOf(3, () => wall('ssh', [host, 'true']));
  parts['ssh2 in-process: ssh -G, connect, run true, close'] = await medianOf(3, async () => {
    const t0 = performance.now();
    const ssh = await openSsh(await resolveSshTarget(host));
    await ssh.run('true');
    await ssh.close();
    return performance.now() - t0;
  });
  parts['local: remote-runner start until it rejects an empty environment'] = await medianOf(3, () =>
    wall(`${build.runner}/bin/remote-runner`, [], { env: { PATH: process.env.PATH! }, extendEnv: false }),
  );
  parts['remote: node -e "" (the app\'s node)'] = await medianOf(3, () => remoteMs(host, `${build.node} -e ""`, succeeded));
  parts['remote: remote-agent start and exit (`remote-agent version`)'] = await medianOf(3, () => remoteMs(host, `${build.agent}/bin/remote-agent version`, succeeded));
  parts['remote: plan start until it rejects an empty environment'] = await medianOf(3, () => remoteMs(host, `env -i ${build.plan}/bin/plan`, refused));
  // The paths a run asks the host about: the closures of the app and the agent.
  const closure = (await execa('nix-store', ['--query', '--requisites', build.plan, build.agent], { stdin: 'ignore', env: nixEnv })).stdout.split('\n').filter(Boolean);
  parts[`remote: nix-store --check-validity of the app's and the agent's closure (${closure.length} paths)`] = await medianOf(3, () =>
    remoteMs(host, `nix-store --check-validity --print-invalid ${closure.join(' ')}`, succeeded),
  );
  parts['remote: the app (`ok`) run alone on the host, instance environment, sync service through a forward'] = await appAlone(build, host, syncPort);
  return parts;
}

export async function benchOverhead(build: Build, syncPort: number, pairs: number, host: string): Promise<{ row: Row; profile: B1Profile }> {
  const o = { runner: build.runner, plan: build.plan, syncPort, testcase: 'ok', host };
  // Untimed: the closure goes onto the host, and both flows run once.
  log(`B1: warm-up on ${host} (copies the closure)`);
  await runOne('ours', o);
  await runOne('baseline', o);
  const oursRuns: InstanceRun[] = [];
  const baseRuns: InstanceRun[] = [];
  const [baseline, ours] = await alternate('B1 one instance (baseline / ours)', pairs, [
    async () => {
      const r = await runOne('baseline', o);
      baseRuns.push(r);
      return r.ms;
    },
    async () => {
      const r = await runOne('ours', o);
      oursRuns.push(r);
      return r.ms;
    },
  ]);
  // The run nearest the median shows the typical timeline.
  const mid = median(ours!);
  const typical = [...oursRuns].sort((a, b) => Math.abs(a.ms - mid) - Math.abs(b.ms - mid))[0]!;
  const timeline = typical.stderrLines.flatMap(({ at, line }) => {
    const phase = phaseOf(line);
    return phase ? [{ label: `${phase}: ${line.replace(/^remote-runner: \S+ \([^)]*\): \w+,? ?/, '')}`, at }] : [];
  });
  timeline.push({ label: 'exit', at: typical.ms });
  const baselineSteps: Record<string, number> = {};
  for (const step of Object.keys(baseRuns[0]?.steps ?? {})) baselineSteps[step] = median(baseRuns.map((r) => r.steps[step] ?? 0));
  log('B1: profiling the parts');
  const parts = await profileParts(build, host, syncPort);
  const noDelay = await noDelayEffect(host);
  const starts = await startTimes(build.runner, build.tools);
  const cold = await coldConnect(build.node, host, [build.plan, build.agent]);
  const [now, withNoDelay] = await alternate('B1 ours as built / ours with TCP_NODELAY', Math.max(3, Math.ceil(pairs / 2)), [
    async () => (await runOne('ours', o)).ms,
    async () => (await runOne('ours', { ...o, extraEnv: { NODE_OPTIONS: NODELAY_NODE_OPTIONS } })).ms,
  ]);
  return {
    row: {
      id: 'B1',
      what: 'one instance of `ok`, closure present',
      ratioIs: 'ours / baseline (time)',
      baselineLabel: 'prototype flow',
      oursLabel: 'remote-runner',
      baseline: baseline!,
      ours: ours!,
      ratios: pairRatios(ours!, baseline!),
      goal: { op: '<=', value: 0.5 },
      remarks: [],
    },
    profile: { ours: timeline, baselineSteps, parts, noDelay, starts, noDelayRuns: { now: now!, noDelay: withNoDelay! }, cold },
  };
}
