// Start the built remote-runner by hand with an instance environment, as local:exec would.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { packParams } from '../../helpers/runenv/params.ts';
import { labExec } from './lab.ts';

export interface RunnerEnvOptions {
  syncPort: number;
  testcase: string;
  runners: unknown[];
  outputs: string;
  params?: Record<string, string>;
  extra?: Record<string, string>;
}

// A fresh run id and the full instance environment for one runner.
export function runnerEnv(o: RunnerEnvOptions): { run: string; env: Record<string, string> } {
  const run = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  const env = {
    PATH: process.env.PATH!,
    TEST_PLAN: 'remote-runner', TEST_CASE: o.testcase, TEST_RUN: run, TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: '1', TEST_INSTANCE_COUNT: '1', TEST_SUBNET: '127.1.0.0/16',
    TEST_INSTANCE_PARAMS: packParams({ 'remote-runners': JSON.stringify(o.runners), ...o.params }),
    TEST_OUTPUTS_PATH: o.outputs, TEST_TEMP_PATH: o.outputs,
    TEST_START_TIME: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(o.syncPort),
    ...o.extra,
  };
  return { run, env };
}

// Spawn `<runner>/bin/remote-runner` with exactly `env`.
export function spawnRunner(runner: string, env: Record<string, string>, args: string[] = []) {
  return execa(`${runner}/bin/remote-runner`, args, { env, extendEnv: false, reject: false, all: true, timeout: 180_000 });
}

// Wait until `text` shows up in the child's combined output.
export async function waitFor(child: ReturnType<typeof spawnRunner>, text: string, ms = 30_000): Promise<void> {
  let seen = '';
  child.all!.on('data', (d: Buffer) => (seen += d.toString()));
  const deadline = Date.now() + ms;
  while (!seen.includes(text)) {
    if (Date.now() > deadline) throw new Error(`"${text}" did not show within ${ms} ms; output so far:\n${seen}`);
    await sleep(100);
  }
}

// The runner's work dirs on a lab host.
export async function workDirs(host: string): Promise<string[]> {
  return (await labExec(host, ['sh', '-c', 'ls -d /tmp/remote-runner-* 2>/dev/null || true'])).stdout.split('\n').filter(Boolean);
}
