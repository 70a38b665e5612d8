// Run a resolved RunSpec the way `testground run single --runner local:exec` does.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { TgError } from '../shared/error.ts';
import { runnerEventOf } from '../shared/progress.ts';
import { killByEnv, terminateGroup } from '../shared/terminate.ts';
import { packParams } from '../runenv/params.ts';
import type { RunEnvKey } from '../runenv/runenv.ts';
import { runKeys } from '../sync-service/client.ts';
import { startSyncService } from '../sync-service/server.ts';
import { buildArtifact, type Artifact } from './build.ts';
import { collectRun } from './collect.ts';
import { startInstance, type Running } from './instance.ts';
import { OutcomeBook } from './outcomes.ts';
import { preparePlacement } from './placement.ts';
import { PrettyPrinter } from './pretty.ts';
import type { RunSpec } from './spec.ts';
import type { InstanceResult } from './summary.ts';

/** Options of runPlan. */
export interface RunOptions {
  /** Root of the outputs tree: `<outputsDir>/<plan>/<run>/<group>/<i>`. */
  outputsDir: string;
  /** Write `<run>.tgz` into this directory when set. */
  collectDir?: string;
  /** Stop every instance after this long. */
  timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping instances. Default 10 s. */
  graceMs?: number;
  /** Aborting it (Ctrl-C) stops every instance; the results are still returned. */
  signal?: AbortSignal;
  /** Passed to every instance as INFLUXDB_URL when set. */
  influxdbUrl?: string;
  /** Extra `nix build` arguments (nix:generic). */
  nixArgs?: string[];
  /** Print instance output as it came (tagged), not as Testground's pretty printer shows it. */
  raw?: boolean;
  stdout?: Writable;
  stderr?: Writable;
}

/** What a run produced. */
export interface RunResult {
  runId: string;
  artifact: Artifact;
  results: InstanceResult[];
  runDir: string;
  collected?: string;
  stopped?: 'timeout' | 'cancelled';
}

// Go's time.RFC3339 rendering of now, in UTC, without fractions.
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

// Build, start the sync service, spawn every instance, and settle their outcomes.
export async function runPlan(spec: RunSpec, options: RunOptions): Promise<RunResult> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const stop = new AbortController();
  let stopped: RunResult['stopped'];
  const halt = (why: 'timeout' | 'cancelled') => {
    stopped ??= why;
    stop.abort(new TgError(why === 'timeout' ? 'E_TIMEOUT' : 'E_ABORTED', `run ${spec.runId}: ${why === 'timeout' ? 'timed out' : 'cancelled'}`));
  };
  const onCancel = () => halt('cancelled');
  options.signal?.addEventListener('abort', onCancel, { once: true });
  if (options.signal?.aborted) halt('cancelled');
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => halt('timeout'), options.timeoutMs);

  const running: Array<{ run: Running; group: string; index: number; outputsPath: string; tempPath: string }> = [];
  const workDir = await mkdtemp(join(tmpdir(), `tg-run-${spec.runId}-`));
  const sync = await startSyncService({ host: '127.0.0.1', port: 0 });
  try {
    const artifact = await buildArtifact(spec, { signal: stop.signal, workDir, nixArgs: options.nixArgs ?? [] });
    const placing = await preparePlacement(spec, artifact, workDir, stop.signal);
    if (placing) stderr.write(`tg-run: placing instances on their hosts through the remote runner (job description ${placing.jobFile})\n`);
    const program = placing ?? artifact;
    const printer = new PrettyPrinter({ stdout, stderr }, options.raw);
    const book = new OutcomeBook();
    const hosts = new Map<number, { host: string; phases: InstanceResult['phases'] }>();
    const events = runKeys({ run: spec.runId, plan: spec.plan, testCase: spec.testCase }).events;
    sync.state.subscribe(
      events,
      (json) => {
        const event = JSON.parse(json) as unknown;
        book.add(event);
        const progress = runnerEventOf(event);
        if (!progress) return;
        const seen = hosts.get(progress.pid) ?? { host: progress.host, phases: {} };
        seen.host = progress.host;
        if (progress.ms !== undefined && progress.phase !== 'chosen' && progress.phase !== 'cleanup') seen.phases[progress.phase] = progress.ms;
        hosts.set(progress.pid, seen);
      },
      stop.signal,
    );

    const runDir = resolve(options.outputsDir, spec.plan, spec.runId);
    const total = spec.groups.reduce((n, g) => n + g.instances, 0);
    const startTime = rfc3339(new Date());
    for (const group of spec.groups) {
      const packed = packParams(group.params);
      for (let index = 0; index < group.instances && !stop.signal.aborted; index++) {
        const outputsPath = join(runDir, group.id, String(index));
        await mkdir(outputsPath, { recursive: true });
        const tempPath = await mkdtemp(join(tmpdir(), 'testground-'));
        const env: Record<RunEnvKey | 'PATH', string> = {
          TEST_PLAN: spec.plan,
          TEST_CASE: spec.testCase,
          TEST_RUN: spec.runId,
          TEST_REPO: '',
          TEST_BRANCH: '',
          TEST_TAG: '',
          TEST_GROUP_ID: group.id,
          TEST_GROUP_INSTANCE_COUNT: String(group.instances),
          TEST_INSTANCE_COUNT: String(total),
          TEST_INSTANCE_ROLE: '',
          TEST_INSTANCE_PARAMS: packed,
          TEST_OUTPUTS_PATH: outputsPath,
          TEST_TEMP_PATH: tempPath,
          TEST_SIDECAR: 'false',
          TEST_START_TIME: startTime,
          TEST_SUBNET: '127.1.0.0/16',
          TEST_CAPTURE_PROFILES: '',
          TEST_DISABLE_METRICS: 'false',
          SYNC_SERVICE_HOST: '127.0.0.1',
          SYNC_SERVICE_PORT: String(sync.port),
          INFLUXDB_URL: options.influxdbUrl ?? '',
          PATH: process.env.PATH ?? '/usr/bin:/bin',
        };
        if (!options.influxdbUrl) delete (env as Partial<typeof env>).INFLUXDB_URL;
        const tag = `${group.id}[${String(index).padStart(3, '0')}]`;
        running.push({ run: startInstance(program, tag, env, tempPath, printer), group: group.id, index, outputsPath, tempPath });
      }
    }

    const grace = options.graceMs ?? 10_000;
    const onStop = () => {
      for (const r of running) void terminateGroup(r.run.child, grace);
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    if (stop.signal.aborted) onStop();

    const results = await Promise.all(
      running.map(async ({ run, group, index, outputsPath }) => {
        const exit = await run.closed;
        const settled = book.settle(group, exit, run.printed(), stopped);
        const where = run.child.pid === undefined ? undefined : hosts.get(run.child.pid);
        return {
          tag: run.tag,
          group,
          index,
          host: where?.host ?? 'localhost',
          outcome: settled.outcome,
          detail: settled.detail,
          durationMs: Date.now() - run.startedAt,
          phases: where?.phases ?? {},
          outputsPath,
        } satisfies InstanceResult;
      }),
    );
    let collected: string | undefined;
    if (options.collectDir) {
      collected = join(resolve(options.collectDir), `${spec.runId}.tgz`);
      await collectRun(runDir, spec.runId, collected);
    }
    const result: RunResult = { runId: spec.runId, artifact, results, runDir };
    if (collected) result.collected = collected;
    if (stopped) result.stopped = stopped;
    return result;
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCancel);
    // Nothing outlives the run: every group gets a final KILL, then whatever still
    // carries the run's id (a helper in a session of its own); temp dirs go.
    await Promise.all(running.map((r) => terminateGroup(r.run.child, 0)));
    const leftovers = await killByEnv('TEST_RUN', spec.runId);
    if (leftovers.length > 0) stderr.write(`tg-run: killed ${leftovers.length} process(es) the run left behind: ${leftovers.join(', ')}\n`);
    await Promise.all([...running.map((r) => rm(r.tempPath, { recursive: true, force: true })), rm(workDir, { recursive: true, force: true })]);
    stop.abort();
    await sync.close();
  }
}
