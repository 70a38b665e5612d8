// One instance started by hand the way local:exec starts it: our remote-runner, or
// the prototype's flow (baseline.sh), with the same environment and sync service.
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { packParams } from '../../helpers/runenv/params.ts';
import { baselineScript, tempDir } from './util.ts';

let runs = 0;

// The local:exec environment of a single instance (as tg-run builds it).
export function instanceEnv(o: { syncPort: number; testcase: string; hosts: string[]; outputs: string; temp: string }): Record<string, string> {
  const run = `bench${Date.now().toString(36)}${(runs++).toString(36)}`;
  return {
    TEST_PLAN: 'remote-runner',
    TEST_CASE: o.testcase,
    TEST_RUN: run,
    TEST_REPO: '',
    TEST_BRANCH: '',
    TEST_TAG: '',
    TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: '1',
    TEST_INSTANCE_COUNT: '1',
    TEST_INSTANCE_ROLE: '',
    TEST_INSTANCE_PARAMS: packParams({ 'remote-runners': JSON.stringify(o.hosts.map((name) => ({ name, arch: 'x86_64-linux' }))) }),
    TEST_OUTPUTS_PATH: o.outputs,
    TEST_TEMP_PATH: o.temp,
    TEST_SIDECAR: 'false',
    TEST_START_TIME: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    TEST_SUBNET: '127.1.0.0/16',
    TEST_CAPTURE_PROFILES: '',
    TEST_DISABLE_METRICS: 'false',
    SYNC_SERVICE_HOST: '127.0.0.1',
    SYNC_SERVICE_PORT: String(o.syncPort),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  };
}

/** One finished instance: its wall time and what it printed, each stderr line with its time. */
export interface InstanceRun {
  ms: number;
  stderrLines: Array<{ at: number; line: string }>;
  steps: Record<string, number>;
  outputs: string[];
}

// Spawn `command` with exactly `env`; resolves when it exits, failing unless it exits 0
// and left a non-empty outputs dir.
async function runInstance(command: string, args: string[], env: Record<string, string>, outputs: string, stepLog?: string): Promise<InstanceRun> {
  const stderrLines: InstanceRun['stderrLines'] = [];
  const t0 = performance.now();
  const child = execa(command, args, { env, extendEnv: false, reject: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', timeout: 300_000, cwd: env.TEST_TEMP_PATH });
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const at = performance.now() - t0;
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      stderrLines.push({ at, line });
      if (process.env.BENCH_VERBOSE) process.stderr.write(`  | ${Math.round(at)} ms: ${line}\n`);
    }
  });
  const result = await child;
  const ms = performance.now() - t0;
  if (result.exitCode !== 0) {
    throw new Error(`${command} exited ${result.exitCode ?? result.signal}:\n${String(result.stdout).slice(-2000)}\n${stderrLines.map((l) => l.line).slice(-15).join('\n')}`);
  }
  const files = await readdir(outputs);
  if (files.length === 0) throw new Error(`${command}: the outputs dir ${outputs} is empty`);
  const steps: Record<string, number> = {};
  if (stepLog) {
    for (const line of (await readFile(stepLog, 'utf8')).split('\n').filter(Boolean)) {
      const [name, value] = line.split(' ');
      steps[name!] = Number(value);
    }
  }
  return { ms, stderrLines, steps, outputs: files };
}

// Run one instance of `testcase` on `host`, ours or the baseline's, in fresh dirs.
export async function runOne(
  side: 'ours' | 'baseline',
  o: { runner: string; plan: string; syncPort: number; testcase: string; host: string; extraEnv?: Record<string, string> },
): Promise<InstanceRun> {
  const outputs = await tempDir('out');
  const temp = await tempDir('tmp');
  try {
    const env = { ...instanceEnv({ syncPort: o.syncPort, testcase: o.testcase, hosts: [o.host], outputs, temp }), ...o.extraEnv };
    if (side === 'ours') return await runInstance(`${o.runner}/bin/remote-runner`, [], env, outputs);
    const stepLog = join(temp, 'steps.log');
    return await runInstance(baselineScript, [o.host, o.plan], { ...env, BENCH_STEP_LOG: stepLog }, outputs, stepLog);
  } finally {
    await Promise.all([rm(outputs, { recursive: true, force: true }), rm(temp, { recursive: true, force: true })]);
  }
}
