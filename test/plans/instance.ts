// Runs the plan the way local:exec does: one process per instance, with the
// run environment and PATH only, in temp dirs the caller removes.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { packParams, type RunEnvKey } from '../../helpers/runenv/index.ts';
import { instanceEnv } from '../runenv/contract.ts';

export const planBin = resolve('bin/plan.js');

/** The directories of one instance: where it starts, its temp dir, its outputs. */
export interface InstanceDirs {
  cwd: string;
  temp: string;
  outputs: string;
}

/** Temp dirs for instances, removed all at once by `remove`. */
export async function tempRoot(): Promise<{ dirs(name: string): Promise<InstanceDirs>; remove(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'plan-test-'));
  return {
    async dirs(name) {
      const d = { cwd: join(root, name, 'cwd'), temp: join(root, name, 'temp'), outputs: join(root, name, 'outputs') };
      await Promise.all(Object.values(d).map((p) => mkdir(p, { recursive: true })));
      return d;
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

/** What one instance is started with. */
export interface InstanceSpec {
  syncPort: number;
  run: string;
  testCase: string;
  dirs: InstanceDirs;
  params?: Record<string, string>;
  count?: number;
  env?: Partial<Record<RunEnvKey, string>>;
  /** Contract variables left out entirely. */
  unset?: RunEnvKey[];
}

// The exact environment an instance gets.
export function specEnv(spec: InstanceSpec): Record<string, string> {
  const count = String(spec.count ?? 1);
  const env = instanceEnv({
    TEST_RUN: spec.run,
    TEST_CASE: spec.testCase,
    TEST_GROUP_INSTANCE_COUNT: count,
    TEST_INSTANCE_COUNT: count,
    TEST_INSTANCE_PARAMS: packParams(spec.params ?? {}),
    TEST_OUTPUTS_PATH: spec.dirs.outputs,
    TEST_TEMP_PATH: spec.dirs.temp,
    SYNC_SERVICE_HOST: '127.0.0.1',
    SYNC_SERVICE_PORT: String(spec.syncPort),
    ...spec.env,
  });
  for (const key of spec.unset ?? []) delete env[key];
  return env;
}

// Start `node bin/plan.js` as one instance; killed if it outlives `timeout`.
export function startInstance(spec: InstanceSpec, timeout = 45_000) {
  return execa('node', [planBin], {
    env: specEnv(spec),
    extendEnv: false,
    cwd: spec.dirs.cwd,
    reject: false,
    timeout,
    stdin: 'ignore',
  });
}

/** One run event the SDK printed, e.g. `{ success_event: { group } }`. */
export type RunEvent = Record<string, Record<string, unknown>>;

// The run events among an instance's stdout lines, in order.
export function runEvents(stdout: string): RunEvent[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event?: RunEvent })
    .flatMap((entry) => (entry.event ? [entry.event] : []));
}

// The kinds of those events: start_event, message_event, success_event, ...
export function eventKinds(stdout: string): string[] {
  return runEvents(stdout).flatMap((e) => Object.keys(e));
}

// The messages recorded with runenv.recordMessage.
export function messages(stdout: string): string[] {
  return runEvents(stdout).flatMap((e) => (e.message_event ? [String(e.message_event.message)] : []));
}
