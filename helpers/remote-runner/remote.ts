// Run one instance on a remote host: copy the closure (once per host per run),
// forward the sync service and InfluxDB, run the app through the agent, stream its
// output, pull its outputs home, and let the agent remove its work dir.
import { basename } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { TgError } from '../shared/error.ts';
import type { Choice } from '../choose-server/choose.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { localSystem } from '../runners/runners.ts';
import type { RunScope, SyncClient } from '../sync-service/client.ts';
import { intParam } from '../runenv/getters.ts';
import { buildRemote } from '../closure/build-remote.ts';
import { locallyValid, realiseLocally } from '../closure/store.ts';
import { DEFAULT_MAX_COPIES, MAX_COPIES_PARAM, withCopySlot } from '../closure/copy-slots.ts';
import { copyClosure } from '../closure/copy.ts';
import { quoteStorePath } from '../ssh/remote-shell.ts';
import { FRAME, FrameReader } from '../agent/frames.ts';
import type { AgentEvent, Job } from '../agent/job.ts';
import { oncePerRun } from '../closure/once-per-run.ts';
import { extractOutputs } from '../outputs/tar.ts';
import { byteMeter, type Progress } from './progress.ts';
import { resolveSshTarget } from '../ssh/ssh-config.ts';
import { openSsh, type RemoteForward, type SshSession } from '../ssh/session.ts';

/** Inputs of runRemote. */
export interface RemoteRun {
  runenv: RunEnv;
  choice: Choice;
  /** The app for the host's system: its derivation and output path (`bin/plan`, `bin/remote-agent`). */
  app: { drvPath: string; outPath: string };
  /** The instance's environment, passed on byte for byte (PATH excepted). */
  env: NodeJS.ProcessEnv;
  client: SyncClient;
  progress: Progress;
  /** Aborted when the runner is asked to stop (SIGTERM/SIGINT): the app gets TERM, outputs are still pulled. */
  stop: AbortSignal;
  graceMs: number;
  /** Told which phase the run is in, for error messages. */
  phase: (phase: string) => void;
}

// Rewrite INFLUXDB_URL to the forwarded port, keeping its scheme and path.
function forwardedUrl(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}

function influxTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
}

// Run the instance on `choice.name`; resolves with the app's exit status.
export async function runRemote(r: RemoteRun): Promise<number> {
  const alias = r.choice.name;
  const scope = { run: r.runenv.run, plan: r.runenv.plan, testCase: r.runenv.testCase };
  r.phase('connecting over SSH');
  const target = await resolveSshTarget(alias, { signal: AbortSignal.timeout(15_000) });
  const ssh = await openSsh(target, { signal: AbortSignal.timeout(30_000) });
  const forwards: RemoteForward[] = [];
  try {
    const outPath = await placeApp(ssh, r, scope);

    r.phase('forwarding the sync service');
    const sync = await ssh.forwardIn('127.0.0.1', { host: r.runenv.syncService.host, port: r.runenv.syncService.port });
    forwards.push(sync);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.env)) if (v !== undefined && k !== 'PATH') env[k] = v;
    env.SYNC_SERVICE_HOST = '127.0.0.1';
    env.SYNC_SERVICE_PORT = String(sync.port);
    if (r.runenv.influxdbUrl) {
      const influx = await ssh.forwardIn('127.0.0.1', influxTarget(r.runenv.influxdbUrl));
      forwards.push(influx);
      env.INFLUXDB_URL = forwardedUrl(r.runenv.influxdbUrl, influx.port);
    }
    const job: Job = { version: 1, command: `${outPath}/bin/plan`, args: [], env, graceMs: r.graceMs };
    return await runAgent(ssh, alias, r, job, outPath);
  } finally {
    await Promise.allSettled(forwards.map((f) => f.close()));
    await ssh.close();
  }
}

// The run's bound on concurrent copies, from its param.
function maxCopies(runenv: RunEnv): number {
  const max = intParam(runenv, MAX_COPIES_PARAM, DEFAULT_MAX_COPIES);
  if (max < 1) throw new TgError('E_PARAM', `param ${MAX_COPIES_PARAM}: expected at least 1, got ${max}`);
  return max;
}

// Put the app on the host, once per host per run: copy its closure, or, when the
// entry says `"build": "remote"` or we cannot build its system here, build it there.
async function placeApp(ssh: SshSession, r: RemoteRun, scope: RunScope): Promise<string> {
  const alias = r.choice.name;
  const builtHere = r.choice.runner.build !== 'remote' && (await locallyValid(r.app.outPath));
  const remoteBuild = r.choice.runner.build === 'remote' || (r.choice.arch !== localSystem() && !builtHere);
  if (remoteBuild) {
    r.phase('building the app on the host');
    const built = await oncePerRun(r.client, scope, `build:${alias}:${basename(r.app.drvPath)}`, () =>
      withCopySlot(r.client, scope, maxCopies(r.runenv), () => buildRemote(ssh, alias, r.app.drvPath)),
    );
    r.progress.report('build', {
      ms: built.value.ms,
      bytes: built.leader ? built.value.copied.bytes : 0,
      paths: built.leader ? built.value.copied.missing : 0,
      note: built.leader ? `built ${built.value.outPath} on the host from ${r.app.drvPath}` : 'built by another instance of this run',
    });
    return built.value.outPath;
  }
  r.phase('copying the closure');
  if (!builtHere) await realiseLocally(r.app.drvPath);
  const onBytes = byteMeter(`remote-runner: ${alias} (${r.choice.arch}): copying`);
  const copied = await oncePerRun(r.client, scope, `copy:${alias}:${basename(r.app.outPath)}`, () =>
    withCopySlot(r.client, scope, maxCopies(r.runenv), () => copyClosure(ssh, alias, r.app.outPath, { onBytes })),
  );
  r.progress.report('copy', {
    ms: copied.value.ms,
    bytes: copied.leader ? copied.value.bytes : 0,
    paths: copied.leader ? copied.value.missing : 0,
    note: !copied.leader
      ? 'copied by another instance of this run'
      : copied.value.missing === 0
        ? `all ${copied.value.closure} paths already present`
        : `of ${copied.value.closure} in the closure`,
  });
  return r.app.outPath;
}

async function runAgent(ssh: SshSession, alias: string, r: RemoteRun, job: Job, outPath: string): Promise<number> {
  r.phase('running the app');
  const started = performance.now();
  const channel = await ssh.exec(`exec ${quoteStorePath(outPath)}/bin/remote-agent run`);
  const tar = new PassThrough();
  const outputs = r.runenv.outputsPath;
  let exit: Extract<AgentEvent, { type: 'exit' }> | undefined;
  let cleaned = false;
  let agentErr = '';
  let pullStarted = 0;
  let protocolError: Error | undefined;

  const extracting = extractOutputs(tar, outputs, { from: alias }).catch((error: unknown) => error as Error);
  const reader = new FrameReader((kind, payload) => {
    if (kind === FRAME.stdout) process.stdout.write(payload);
    else if (kind === FRAME.stderr) process.stderr.write(payload);
    else if (kind === FRAME.tar) {
      pullStarted ||= performance.now();
      // Backpressure: hold the SSH channel while the extractor catches up.
      if (!tar.write(payload)) {
        channel.pause();
        tar.once('drain', () => channel.resume());
      }
    } else if (kind === FRAME.tarEnd) tar.end();
    else if (kind === FRAME.event) {
      const event = JSON.parse(payload.toString()) as AgentEvent;
      if (event.type === 'exit') {
        exit = event;
        r.progress.report('run', { ms: Math.round(performance.now() - started), note: `exit ${event.status}` });
      } else if (event.type === 'error') process.stderr.write(`remote-runner: ${alias}: ${event.message}\n`);
      else if (event.type === 'cleaned') cleaned = true;
    }
  });
  channel.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (error) {
      protocolError = error as Error;
      channel.close();
    }
  });
  channel.stderr.on('data', (d: Buffer) => (agentErr = (agentErr + d.toString()).slice(-4000)));
  const closed = new Promise<number | null>((resolve) => {
    let code: number | null = null;
    channel.once('exit', (c: number | null) => (code = c));
    channel.once('close', () => resolve(code));
  });

  // A channel that closes mid-pull ends the tar stream: what arrived stays, the rest is reported.
  void closed.then(() => {
    if (!tar.writableEnded) tar.end();
  });
  const terminate = () => channel.write(`${JSON.stringify({ op: 'term' })}\n`);
  r.stop.addEventListener('abort', terminate, { once: true });
  channel.write(`${JSON.stringify(job)}\n`);
  try {
    // The agent ends its tar stream after the app exits; then we let it clean up.
    const tarDone = new Promise<void>((resolve) => tar.once('end', resolve).once('close', resolve));
    await Promise.race([tarDone, closed]);
    if (!exit) {
      // The run ended before the app did: the connection or the agent went away mid-run.
      const code = await closed;
      if (protocolError) throw new TgError('E_REMOTE', `ssh ${alias}: ${protocolError.message}`, { cause: protocolError });
      const lost = await Promise.race([ssh.closed, sleep(1_000).then(() => undefined)]);
      throw new TgError('E_REMOTE', `ssh ${alias}: the run ended before the app's exit status arrived (${lost ? `connection lost: ${lost.message}` : `agent exited ${code}`})${agentErr ? `: ${agentErr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
    }
    r.phase('pulling the outputs');
    const report = await extracting;
    if (report instanceof Error) {
      process.stderr.write(`remote-runner: ${alias}: pulling outputs: ${report.message}\n`);
    } else {
      r.progress.report('pull', { ms: Math.round(performance.now() - (pullStarted || performance.now())), bytes: report.bytes, paths: report.files });
      for (const refused of report.refused) process.stderr.write(`remote-runner: ${alias}: refused output entry ${JSON.stringify(refused.name)}: ${refused.reason}\n`);
    }
    r.phase('cleaning up');
    if (channel.writable) channel.end(`${JSON.stringify({ op: 'done' })}\n`);
    const code = await closed;
    r.progress.report('cleanup', { note: cleaned ? 'remote work dir removed' : `agent exited ${code} without confirming cleanup` });
    if (protocolError) throw new TgError('E_REMOTE', `ssh ${alias}: ${protocolError.message}`, { cause: protocolError });
    return exit.status;
  } finally {
    r.stop.removeEventListener('abort', terminate);
    tar.destroy();
  }
}
