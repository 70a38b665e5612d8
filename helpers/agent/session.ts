// The controller's side of the agent: start `remote-agent run` on the host over an
// SSH channel, hand it the job, relay the app's output, extract its outputs tar
// as it arrives, and let the agent clean up.
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { TgError } from '../shared/error.ts';
import { extractOutputs, type ExtractReport } from '../outputs/tar.ts';
import { quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';
import { FRAME, FrameReader } from './frames.ts';
import type { AgentEvent, Job } from './job.ts';

/** What a run of the agent reports on the way. */
export interface AgentHooks {
  /** The phase the run is in, for error messages. */
  phase(phase: string): void;
  /** The app exited with `status` after `ms`. */
  exited(status: number, ms: number): void;
  /** The outputs arrived (or failed to, with the error). */
  pulled(result: { report: ExtractReport; ms: number } | { error: Error }): void;
  /** The agent has gone: `cleaned` when it confirmed that it removed its work dir. */
  finished(cleaned: boolean, code: number | null): void;
}

/** Inputs of runAgent. */
export interface AgentRun {
  ssh: SshSession;
  /** The host, for messages. */
  alias: string;
  /** The agent program: `<agent out path>/bin/remote-agent`. */
  agent: string;
  job: Job;
  /** Where the outputs go, here. */
  outputsPath: string;
  /** The most bytes of outputs to bring home. */
  maxOutputBytes: number;
  /** Aborted when the app should stop: the agent sends it TERM, outputs are still pulled. */
  stop: AbortSignal;
  hooks: AgentHooks;
}

// How long the agent may take to confirm its cleanup after `done`.
const CLEANUP_BOUND_MS = 15_000;

// Run the job through the agent on the host; resolves with the app's exit status.
export async function runAgent(a: AgentRun): Promise<number> {
  a.hooks.phase('running the app');
  const started = performance.now();
  const [store, ...rest] = a.agent.slice('/nix/store/'.length).split('/');
  const channel = await a.ssh.exec(`exec ${quoteStorePath(`/nix/store/${store}`)}/${rest.map(shellWord).join('/')} run`);
  const tar = new PassThrough();
  tar.on('error', () => {}); // the extractor reports what went wrong
  let exit: Extract<AgentEvent, { type: 'exit' }> | undefined;
  let cleaned = false;
  let agentErr = '';
  let pullStarted = 0;
  let protocolError: Error | undefined;
  // Once the pull has failed, the rest of the tar is unwanted: once the app has
  // exited too, the channel closes and the agent cleans up on its own.
  let pullFailed = false;
  let tarEnded: () => void = () => {};
  const ended = new Promise<void>((resolve) => (tarEnded = resolve));

  const extracting = extractOutputs(tar, a.outputsPath, { from: a.alias, maxBytes: a.maxOutputBytes }).catch((error: unknown) => {
    pullFailed = true;
    channel.resume();
    if (exit) channel.close();
    return error as Error;
  });
  const onFrame = (kind: number, payload: Buffer): void => {
    if (kind === FRAME.stdout) process.stdout.write(payload);
    else if (kind === FRAME.stderr) process.stderr.write(payload);
    else if (kind === FRAME.tar) {
      if (pullFailed) return;
      pullStarted ||= performance.now();
      // Backpressure: hold the SSH channel while the extractor catches up.
      if (!tar.write(payload)) {
        channel.pause();
        const go = () => channel.resume();
        tar.once('drain', go).once('close', go);
      }
    } else if (kind === FRAME.tarEnd) {
      tar.end();
      tarEnded();
    } else if (kind === FRAME.event) {
      const event = JSON.parse(payload.toString()) as AgentEvent;
      if (event.type === 'exit') {
        exit = event;
        a.hooks.exited(event.status, Math.round(performance.now() - started));
        if (pullFailed) channel.close();
      } else if (event.type === 'error') process.stderr.write(`remote-runner: ${a.alias}: ${event.message}\n`);
      else if (event.type === 'cleaned') cleaned = true;
    }
  };
  const reader = new FrameReader(onFrame);
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
  a.stop.addEventListener('abort', terminate, { once: true });
  channel.write(`${JSON.stringify(a.job)}\n`);
  // A stop that came before the app started still stops it.
  if (a.stop.aborted) terminate();
  try {
    // The agent ends its tar stream after the app exits; then we let it clean up.
    await Promise.race([ended, closed]);
    if (!exit) {
      // The run ended before the app did: the connection or the agent went away mid-run.
      const code = await closed;
      if (protocolError) throw new TgError('E_REMOTE', `ssh ${a.alias}: ${protocolError.message}`, { cause: protocolError });
      const lost = await Promise.race([a.ssh.closed, sleep(1_000).then(() => undefined)]);
      const why = lost ? `connection lost: ${lost.message}` : `agent exited ${code}`;
      const said = agentErr ? `: ${agentErr.trim().split('\n').slice(-3).join(' | ')}` : '';
      throw new TgError('E_REMOTE', `ssh ${a.alias}: the run ended before the app's exit status arrived (${why})${said}`);
    }
    a.hooks.phase('pulling the outputs');
    const report = await extracting;
    a.hooks.pulled(report instanceof Error ? { error: report } : { report, ms: Math.round(performance.now() - (pullStarted || performance.now())) });
    a.hooks.phase('cleaning up');
    if (channel.writable && !pullFailed) channel.end(`${JSON.stringify({ op: 'done' })}\n`);
    const code = await Promise.race([closed, sleep(CLEANUP_BOUND_MS, 'timeout' as const, { ref: false })]);
    if (code === 'timeout') channel.close();
    a.hooks.finished(cleaned, code === 'timeout' ? null : code);
    if (protocolError) throw new TgError('E_REMOTE', `ssh ${a.alias}: ${protocolError.message}`, { cause: protocolError });
    return exit.status;
  } finally {
    a.stop.removeEventListener('abort', terminate);
    tar.destroy();
  }
}

// A path segment for the remote shell: store path entries are plain words.
function shellWord(segment: string): string {
  if (!/^[A-Za-z0-9+._-]+$/.test(segment)) throw new TgError('E_BUILD', `agent entry segment ${JSON.stringify(segment)}: expected letters, digits, "+", ".", "_" or "-"`);
  return segment;
}
