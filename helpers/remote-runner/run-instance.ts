// One instance, end to end: choose the host, then run the app there or here.
import { TgError } from '../shared/error.ts';
import { runForeground } from '../shared/relay.ts';
import { chooseServer } from '../choose-server/choose.ts';
import { localSystem } from '../runners/runners.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { SyncClient } from '../sync-service/client.ts';
import { jobFor, loadJobDescription, programOf, type Component, type JobDescription } from '../closure/job-description.ts';
import { locallyValid, realiseLocally } from '../closure/store.ts';
import { DEFAULT_MAX_OUTPUT_BYTES } from '../outputs/tar.ts';
import { sizeParam } from '../runenv/getters.ts';

/** The param that bounds what one instance brings home from a remote host. */
export const MAX_OUTPUTS_PARAM = 'remote-runners-max-outputs-bytes';
import { Progress, timed } from './progress.ts';
import { runRemote } from './remote.ts';
import { placedName } from './self-placed.ts';
import { exitStatus } from '../shared/terminate.ts';

/** Options of runInstance. */
export interface InstanceOptions {
  /** The job description: the app and the agent for each system (a file, or one made here). */
  job: { file: string } | { description: JobDescription; name: string };
  /** The instance's whole environment, passed on unchanged. */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Between TERM and KILL when the remote app is stopped. Default 10 s. */
  graceMs?: number;
}

// Why the run was stopped early: a signal to the runner, or the sync service going away.
type StopReason = { signal: NodeJS.Signals } | { lost: Error };

// Abort `stop` on SIGTERM/SIGINT/SIGHUP, or when the sync service connection drops.
async function withStop<T>(client: SyncClient, work: (stop: AbortSignal, reason: () => StopReason | undefined) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  let reason: StopReason | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    reason ??= { signal };
    process.stderr.write(`remote-runner: ${signal}: stopping the app, then pulling its outputs\n`);
    stop.abort(signal);
  };
  void client.lost.then((error) => {
    reason ??= { lost: error };
    process.stderr.write(`remote-runner: ${error.message}: stopping the app\n`);
    stop.abort(error);
  });
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    return await work(stop.signal, () => reason);
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

// Run this instance where choose-server sends it; resolves with its exit status.
// Every error names the instance, the host and the phase it failed in.
export async function runInstance(runenv: RunEnv, options: InstanceOptions): Promise<number> {
  let phase = 'connecting to the sync service';
  let where = `instance ${runenv.group}`;
  try {
    return await runPhases(runenv, options, (p) => (phase = p), (w) => (where = w));
  } catch (error) {
    if (error instanceof TgError) throw new TgError(error.code, `${where}, ${phase}: ${error.message}`, { cause: error });
    throw error;
  }
}

async function runPhases(runenv: RunEnv, options: InstanceOptions, setPhase: (phase: string) => void, setWhere: (where: string) => void): Promise<number> {
  const { description, name: jobName } = 'file' in options.job ? { description: await loadJobDescription(options.job.file), name: options.job.file } : options.job;
  const maxOutputBytes = sizeParam(runenv, MAX_OUTPUTS_PARAM, DEFAULT_MAX_OUTPUT_BYTES);
  const client = await SyncClient.connect(runenv.syncService.url, { signal: options.signal ?? AbortSignal.timeout(30_000) });
  try {
    setPhase('choosing a host');
    const choice = await chooseServer(runenv, { client, ...(options.signal ? { signal: options.signal } : {}) });
    setWhere(`instance ${runenv.group} #${choice.seq} on ${choice.name}`);
    const progress = new Progress(client, runenv, choice.name, choice.arch);
    progress.report('chosen', { note: `runner ${choice.index} of remote-runners (seq ${choice.seq})` });
    if (choice.name === 'localhost' && choice.arch !== localSystem()) {
      throw new TgError('E_PARAM', `localhost is ${localSystem()}, but remote-runners[${choice.index}].arch says ${choice.arch}`);
    }
    const job = jobFor(description, choice.arch, jobName);
    const status = await withStop(client, async (stop, reason) => {
      let status: number;
      if (choice.name !== 'localhost') {
        status = await runRemote({ runenv, choice, job, env: options.env, client, progress, stop, graceMs: options.graceMs ?? 10_000, phase: setPhase, maxOutputBytes });
      } else {
        setPhase('building the app here');
        await ensureLocal(job.app);
        setPhase('running the app');
        const run = await timed(() => runForeground(programOf(job.app), [], { env: options.env, argv0: placedName(programOf(job.app)) }, { signal: stop, graceMs: options.graceMs ?? 10_000 }));
        progress.report('run', { ms: run.ms, note: `exit ${run.value}` });
        status = run.value;
      }
      const why = reason();
      if (why && 'lost' in why) throw new TgError('E_SYNC', `${why.lost.message} during the run; the app was stopped (its status: ${status})`, { cause: why.lost });
      return why ? exitStatus(null, why.signal) : status;
    });
    await progress.flush();
    return status;
  } finally {
    client.close();
  }
}

// Make sure the app is in the local store, realising its derivation when it is not.
async function ensureLocal(app: Component): Promise<void> {
  if (await locallyValid(app.outPath)) return;
  if (!app.drvPath) throw new TgError('E_BUILD', `the app ${app.outPath} is not in the local store, and the job description names no derivation that builds it`);
  await realiseLocally(app.drvPath);
}
