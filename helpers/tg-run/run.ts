// Run a resolved RunSpec the way `testground run single --runner local:exec` does.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { TgError } from '../shared/error.ts';
import { runnerEventOf } from '../shared/progress.ts';
import { killByEnv } from '../shared/terminate.ts';
import { boolParam, intParam, sizeParam } from '../runenv/getters.ts';
import { runKeys } from '../sync-service/client.ts';
import { startSyncService, type SyncService } from '../sync-service/server.ts';
import { DEFAULT_MAX_COPIES, FAN_OUT_PARAM, MAX_COPIES_PARAM, MAX_OUTPUTS_PARAM } from '../remote-runner/params.ts';
import { DEFAULT_MAX_OUTPUT_BYTES } from '../outputs/tar.ts';
import { placedName } from '../remote-runner/self-placed.ts';
import { buildArtifact, type Artifact } from './build.ts';
import { collectRun } from './collect.ts';
import { Fleet } from '../remote-runner/fleet.ts';
import { instanceEnv } from './instance-env.ts';
import { startInstance, type Running } from './instance.ts';
import { OutcomeBook, type Settled } from './outcomes.ts';
import { jobDescriptionFor, runnerOf } from './placement.ts';
import { PrettyPrinter } from './pretty.ts';
import { startRemoteInstance } from './remote-instance.ts';
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

/** One instance and what the summary needs of it. */
interface Started {
  run: Running;
  group: string;
  index: number;
  outputsPath: string;
  tempPath: string;
}

// Build, start the sync service, start every instance (here, through the
// artifact's own runner, or on hosts of the fleet), and settle their outcomes.
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
  const grace = options.graceMs ?? 10_000;

  const running: Started[] = [];
  let fleet: Fleet | undefined;
  const workDir = await mkdtemp(join(tmpdir(), `tg-run-${spec.runId}-`));
  const sync = await startSyncService({ host: '127.0.0.1', port: 0 });
  try {
    const artifact = await buildArtifact(spec, { signal: stop.signal, workDir, nixArgs: options.nixArgs ?? [] });
    const description = await jobDescriptionFor(spec, artifact, stop.signal);
    const first = spec.groups[0]!;
    if (description) {
      fleet = new Fleet({
        description,
        sync: { host: '127.0.0.1', port: sync.port },
        ...(options.influxdbUrl ? { influxdbUrl: options.influxdbUrl } : {}),
        maxCopies: intParam({ params: first.params }, MAX_COPIES_PARAM, DEFAULT_MAX_COPIES),
        fanOut: boolParam({ params: first.params }, FAN_OUT_PARAM, true),
        log: (line) => stderr.write(`tg-run: ${line}\n`),
      });
      stderr.write('tg-run: placing the instances on their hosts: one connection, one copy and one agent per host\n');
    }
    const printer = new PrettyPrinter({ stdout, stderr }, options.raw);
    const { book, hosts } = followEvents(sync, spec, stop.signal);

    const runDir = resolve(options.outputsDir, spec.plan, spec.runId);
    const total = spec.groups.reduce((n, g) => n + g.instances, 0);
    const startTime = rfc3339(new Date());
    const runnerFor = runnerOf(spec);
    let seq = 0;
    for (const group of spec.groups) {
      const maxOutputBytes = sizeParam({ params: group.params }, MAX_OUTPUTS_PARAM, DEFAULT_MAX_OUTPUT_BYTES);
      for (let index = 0; index < group.instances && !stop.signal.aborted; index++) {
        seq += 1;
        const outputsPath = join(runDir, group.id, String(index));
        await mkdir(outputsPath, { recursive: true });
        const tempPath = await mkdtemp(join(tmpdir(), 'testground-'));
        const env = instanceEnv(spec, { group, total, outputsPath, tempPath, startTime, sync, influxdbUrl: options.influxdbUrl });
        const tag = `${group.id}[${String(index).padStart(3, '0')}]`;
        const runner = runnerFor(group, seq);
        const run =
          fleet && runner.name !== 'localhost'
            ? startRemoteInstance({ fleet, runner, tag, env, outputsPath, maxOutputBytes, graceMs: grace, printer })
            : startInstance({ ...artifact, ...(fleet ? { argv0: placedName(artifact.command) } : {}) }, tag, env, tempPath, printer);
        running.push({ run, group: group.id, index, outputsPath, tempPath });
      }
    }

    const onStop = () => {
      for (const r of running) void r.run.stop(grace);
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    if (stop.signal.aborted) onStop();

    const results = await Promise.all(
      running.map(async ({ run, group, index, outputsPath }) => {
        const exit = await run.closed;
        const settled: Settled = exit.failure ? { outcome: stopped ?? 'crash', detail: exit.failure } : book.settle(group, exit, run.printed(), stopped);
        const where = run.where() ?? (run.pid === undefined ? undefined : hosts.get(run.pid));
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
    // Nothing outlives the run: every instance gets a final KILL, every host's agent
    // stops, then whatever still carries the run's id (a helper in a session of its
    // own) goes; temp dirs go.
    await Promise.all(running.map((r) => r.run.stop(0)));
    await fleet?.close();
    const leftovers = await killByEnv('TEST_RUN', spec.runId);
    if (leftovers.length > 0) stderr.write(`tg-run: killed ${leftovers.length} process(es) the run left behind: ${leftovers.join(', ')}\n`);
    await Promise.all([...running.map((r) => rm(r.tempPath, { recursive: true, force: true })), rm(workDir, { recursive: true, force: true })]);
    stop.abort();
    await sync.close();
  }
}

// The run's events: result events for the outcomes, and the progress events of
// per-instance runners (by their pid) for where each instance ran.
function followEvents(sync: SyncService, spec: RunSpec, signal: AbortSignal) {
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
    signal,
  );
  return { book, hosts };
}
