// One instance, served by the run's controller for the process Testground
// started: choose its host, then run it here (the process execs the app) or on
// the host's agent, relaying its output and pulling its outputs home.
import type { Socket } from 'node:net';
import { FRAME } from '../../agent/frames.ts';
import type { Job } from '../../agent/job.ts';
import { chooseServer, type Choice } from '../../choose-server/choose.ts';
import { jobFor, programOf, type Component, type JobDescription } from '../../closure/job-description.ts';
import { locallyValid, realiseLocally } from '../../closure/store.ts';
import { DEFAULT_MAX_OUTPUT_BYTES } from '../../outputs/tar.ts';
import { sizeParam } from '../../runenv/getters.ts';
import type { RunEnv } from '../../runenv/runenv.ts';
import { localSystem } from '../../runners/runners.ts';
import { TgError } from '../../shared/error.ts';
import { exitStatus } from '../../shared/terminate.ts';
import { HostFailure, copyNote } from '../fleet.ts';
import { Progress } from '../progress.ts';
import { MAX_OUTPUTS_PARAM } from '../params.ts';
import { placedName } from '../self-placed.ts';
import type { RunContext } from './run-context.ts';
import { eventFrame, streamFrames, type Hello, type InstanceEvent } from './wire.ts';

/** One connected instance. */
export interface Served {
  socket: Socket;
  hello: Hello;
  runenv: RunEnv;
  /** Aborted by a `term` line, when the instance's process goes away, or when the sync service is lost. */
  stop: AbortSignal;
  graceMs: number;
  /** Why the run's sync service went away, if it did. */
  lost(): Error | undefined;
}

// Serve the instance to its end; every way it ends is told to its process.
export async function serveInstance(ctx: RunContext, s: Served): Promise<void> {
  const send = (frame: Buffer) => {
    if (!s.socket.destroyed) s.socket.write(frame);
  };
  const tell = (event: InstanceEvent) => send(eventFrame(event));
  const stderr = (line: string) => streamFrames(FRAME.stderr, Buffer.from(line)).forEach(send);
  let phase = 'choosing a host';
  let where = `instance ${s.runenv.group}`;
  try {
    const description = await ctx.description('job' in s.hello ? { job: s.hello.job } : { app: s.hello.app });
    const maxOutputBytes = sizeParam(s.runenv, MAX_OUTPUTS_PARAM, DEFAULT_MAX_OUTPUT_BYTES);
    const choice = await chooseServer(s.runenv, { client: ctx.sync });
    where = `instance ${s.runenv.group} #${choice.seq} on ${choice.name}`;
    if (choice.name === 'localhost' && choice.arch !== localSystem()) {
      throw new TgError('E_PARAM', `localhost is ${localSystem()}, but remote-runners[${choice.index}].arch says ${choice.arch}`);
    }
    const progress = new Progress(ctx.sync, s.runenv, choice.name, choice.arch, { pid: s.hello.pid, write: stderr });
    progress.report('chosen', { note: `runner ${choice.index} of remote-runners (seq ${choice.seq})` });
    const job = jobFor(description, choice.arch, 'job' in s.hello ? s.hello.job : `the job for ${s.hello.app}`);
    if (choice.name === 'localhost') {
      phase = 'building the app here';
      await ensureLocal(job.app);
      const program = programOf(job.app);
      await progress.flush();
      tell({ type: 'exec', program, argv0: placedName(program) });
      return;
    }
    const status = await runOnHost(ctx, s, description, choice, progress, maxOutputBytes, (p) => (phase = p), send);
    await progress.flush();
    const lost = s.lost();
    if (lost) throw new TgError('E_SYNC', `${lost.message} during the run; the app was stopped (its status: ${status})`, { cause: lost });
    tell({ type: 'exit', status: s.stop.aborted ? exitStatus(null, 'SIGTERM') : status });
  } catch (error) {
    if (error instanceof HostFailure) tell({ type: 'error', message: `${where}, ${error.phase}: ${(error.cause as Error).message}` });
    else if (error instanceof TgError) tell({ type: 'error', message: `${where}, ${phase}: ${error.message}` });
    else throw error;
  }
}

// Run the instance on its host through the host's agent; resolves with the app's status.
async function runOnHost(
  ctx: RunContext,
  s: Served,
  description: JobDescription,
  choice: Choice,
  progress: Progress,
  maxOutputBytes: number,
  setPhase: (phase: string) => void,
  send: (frame: Buffer) => void,
): Promise<number> {
  setPhase('placing the app on the host');
  // A stop while the host is being placed ends the instance at once; the app never starts.
  const placing = ctx.fleet(description, () => {}).host(choice.runner);
  const stopped = new Promise<undefined>((resolve) => (s.stop.aborted ? resolve(undefined) : s.stop.addEventListener('abort', () => resolve(undefined), { once: true })));
  const placed = await Promise.race([placing, stopped]);
  if (!placed) return exitStatus(null, 'SIGTERM');
  const { link, first } = placed;
  const copied = link.placed.copied;
  if (link.placed.built.length > 0) progress.report('build', { ms: link.placed.buildMs, note: first ? `built ${link.placed.built.join(', ')} on the host` : 'built by another instance of this run' });
  if (copied) {
    const note = first ? copyNote(copied) : 'copied by another instance of this run';
    progress.report('copy', { ms: copied.ms, bytes: first ? copied.bytes : 0, paths: first ? copied.missing : 0, note });
  }
  setPhase('running the app');
  const env: Record<string, string> = { ...s.hello.env, SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(link.syncPort) };
  delete env.PATH;
  if (link.influxdbUrl) env.INFLUXDB_URL = link.influxdbUrl;
  const job: Job = { version: 1, command: link.program, args: [], argv0: placedName(link.program), env, graceMs: s.graceMs };
  return link.agent.run({
    job,
    outputsPath: s.runenv.outputsPath,
    maxOutputBytes,
    stop: s.stop,
    hooks: {
      stdout: (chunk) => streamFrames(FRAME.stdout, chunk).forEach(send),
      stderr: (chunk) => streamFrames(FRAME.stderr, chunk).forEach(send),
      exited: (exit, ms) => progress.report('run', { ms, note: `exit ${exit.status}` }),
      pulled: (result) => {
        setPhase('pulling the outputs');
        if ('error' in result) {
          streamFrames(FRAME.stderr, Buffer.from(`remote-runner: ${choice.name}: pulling outputs: ${result.error.message}\n`)).forEach(send);
          return;
        }
        const { report } = result;
        progress.report('pull', { ms: result.ms, bytes: report.bytes, paths: report.files });
        const lines = report.refused.map((r) => `remote-runner: ${choice.name}: refused output entry ${JSON.stringify(r.name)}: ${r.reason}\n`);
        if (report.refusedTotal > report.refused.length) lines.push(`remote-runner: ${choice.name}: refused ${report.refusedTotal - report.refused.length} more output entries\n`);
        for (const line of lines) streamFrames(FRAME.stderr, Buffer.from(line)).forEach(send);
      },
      finished: (cleaned) => progress.report('cleanup', { note: cleaned ? 'remote work dir removed' : 'the agent did not confirm the cleanup' }),
    },
  });
}

// Make sure the app is in the local store, realising its derivation when it is not.
async function ensureLocal(app: Component): Promise<void> {
  if (await locallyValid(app.outPath)) return;
  if (!app.drvPath) throw new TgError('E_BUILD', `the app ${app.outPath} is not in the local store, and the job description names no derivation that builds it`);
  await realiseLocally(app.drvPath);
}
