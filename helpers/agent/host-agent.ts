// One agent on a host for a whole run (`remote-agent serve` over one SSH channel):
// it starts every instance placed there, and their output, exit statuses and
// outputs come back over the channel, told apart by instance id.
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientChannel } from 'ssh2';
import { TgError } from '../shared/error.ts';
import { exitStatus } from '../shared/terminate.ts';
import { extractOutputs, type ExtractReport } from '../outputs/tar.ts';
import { quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';
import { FRAME } from './frames.ts';
import type { AgentEvent, Job } from './job.ts';
import { MuxFrameReader } from './mux-frames.ts';

/** What one instance's run reports on the way. */
export interface InstanceHooks {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  exited(exit: { status: number; code: number | null; signal: string | null }, ms: number): void;
  pulled(result: { report: ExtractReport; ms: number } | { error: Error }): void;
  finished(cleaned: boolean): void;
}

/** One instance's part of a run. */
export interface InstanceRun {
  job: Job;
  outputsPath: string;
  maxOutputBytes: number;
  /** Aborted when the instance should stop: its app gets TERM, outputs are still pulled. */
  stop: AbortSignal;
  hooks: InstanceHooks;
}

interface Instance {
  hooks: InstanceHooks;
  started: number;
  tar: PassThrough;
  exit?: Extract<AgentEvent, { type: 'exit' }>;
  cleaned: boolean;
  pullFailed: boolean;
  pullStarted: number;
  tarEnded: () => void;
  ended: Promise<void>;
  cleanedNow: () => void;
  cleanedSeen: Promise<void>;
  exitNow: () => void;
  exitSeen: Promise<void>;
}

const READY_BOUND_MS = 30_000;
const CLEANUP_BOUND_MS = 10_000;
const SHUTDOWN_BOUND_MS = 30_000;

export class HostAgent {
  readonly #alias: string;
  readonly #channel: ClientChannel;
  readonly #instances = new Map<number, Instance>();
  #nextId = 1;
  #lostError: Error | undefined;
  /** Settles when the channel closes: with why it closed, or undefined after shutdown(). */
  readonly closed: Promise<Error | undefined>;
  #shuttingDown = false;

  private constructor(alias: string, channel: ClientChannel, ssh: SshSession) {
    this.#alias = alias;
    this.#channel = channel;
    let agentErr = '';
    channel.stderr.on('data', (d: Buffer) => (agentErr = (agentErr + d.toString()).slice(-2000)));
    this.closed = new Promise((resolve) => {
      channel.once('close', () => {
        void Promise.race([ssh.closed, sleep(500, undefined, { ref: false })]).then((lost) => {
          const why = lost ? `connection lost: ${lost.message}` : `the agent ended${agentErr ? `: ${agentErr.trim().split('\n').slice(-3).join(' | ')}` : ''}`;
          this.#lostError ??= this.#shuttingDown ? undefined : new TgError('E_REMOTE', `ssh ${alias}: ${why}`);
          for (const instance of this.#instances.values()) {
            if (!instance.tar.writableEnded) instance.tar.end();
            instance.tarEnded();
            instance.cleanedNow();
            instance.exitNow();
          }
          resolve(this.#lostError);
        });
      });
    });
  }

  // Start `remote-agent serve` on the host and wait until it says it is ready.
  static async start(ssh: SshSession, alias: string, agentProgram: string, signal?: AbortSignal): Promise<HostAgent> {
    const [store, ...rest] = agentProgram.slice('/nix/store/'.length).split('/');
    const channel = await ssh.exec(`exec ${quoteStorePath(`/nix/store/${store}`)}/${rest.join('/')} serve`, signal ? { signal } : {});
    const agent = new HostAgent(alias, channel, ssh);
    let ready: () => void = () => {};
    const readied = new Promise<void>((resolve) => (ready = resolve));
    const reader = new MuxFrameReader((kind, id, payload) => (id === 0 ? kind === FRAME.event && ready() : agent.#frame(kind, id, payload)));
    channel.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        agent.#lostError = new TgError('E_REMOTE', `ssh ${alias}: ${(error as Error).message}`, { cause: error });
        channel.close();
      }
    });
    const first = await Promise.race([readied.then(() => 'ready' as const), agent.closed, sleep(READY_BOUND_MS, 'timeout' as const, { ref: false })]);
    if (first === 'ready') return agent;
    channel.close();
    if (first === 'timeout') throw new TgError('E_REMOTE', `ssh ${alias}: the agent did not say it was ready within ${READY_BOUND_MS / 1000} s`);
    throw first ?? new TgError('E_REMOTE', `ssh ${alias}: the agent ended before it was ready`);
  }

  // Run one instance; resolves with its app's exit status.
  async run(r: InstanceRun): Promise<number> {
    if (r.stop.aborted) return exitStatus(null, 'SIGTERM');
    if (this.#lostError) throw this.#lostError;
    const id = this.#nextId++;
    const instance = this.#instance(id, r.hooks);
    const extracting = extractOutputs(instance.tar, r.outputsPath, { from: this.#alias, maxBytes: r.maxOutputBytes }).catch((error: unknown) => {
      // The rest of this instance's tar is dropped as it comes; once the app has
      // exited, its run does not wait for the end of the tar.
      instance.pullFailed = true;
      this.#channel.resume();
      return error as Error;
    });
    const pullFailedAfterExit = extracting.then((result) => (result instanceof Error ? instance.exitSeen : new Promise<never>(() => {})));
    const hooks = r.hooks;
    const terminate = () => {
      if (!instance.exit) this.#send({ op: 'term', id });
    };
    r.stop.addEventListener('abort', terminate, { once: true });
    this.#send({ op: 'start', id, job: r.job });
    try {
      await Promise.race([instance.ended, this.closed, pullFailedAfterExit]);
      if (!instance.exit) throw this.#lostError ?? new TgError('E_REMOTE', `ssh ${this.#alias}: the agent ended before the app's exit status arrived`);
      const report = await extracting;
      hooks.pulled(report instanceof Error ? { error: report } : { report, ms: Math.round(performance.now() - (instance.pullStarted || performance.now())) });
      this.#send({ op: 'done', id });
      await Promise.race([instance.cleanedSeen, sleep(CLEANUP_BOUND_MS, undefined, { ref: false })]);
      hooks.finished(instance.cleaned);
      return instance.exit.status;
    } finally {
      r.stop.removeEventListener('abort', terminate);
      instance.tar.destroy();
      this.#instances.delete(id);
    }
  }

  // Stop every instance and end the agent (it removes every work dir); bounded.
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    this.#send({ op: 'shutdown' });
    this.#channel.end();
    const done = await Promise.race([this.closed.then(() => true), sleep(SHUTDOWN_BOUND_MS, false, { ref: false })]);
    if (!done) this.#channel.close();
  }

  #instance(id: number, hooks: InstanceHooks): Instance {
    let tarEnded: () => void = () => {};
    let cleanedNow: () => void = () => {};
    let exitNow: () => void = () => {};
    const tar = new PassThrough();
    tar.on('error', () => {}); // the extractor reports what went wrong
    const instance: Instance = {
      hooks,
      started: performance.now(),
      tar,
      cleaned: false,
      pullFailed: false,
      pullStarted: 0,
      tarEnded: () => tarEnded(),
      ended: new Promise<void>((resolve) => (tarEnded = resolve)),
      cleanedNow: () => cleanedNow(),
      cleanedSeen: new Promise<void>((resolve) => (cleanedNow = resolve)),
      exitNow: () => exitNow(),
      exitSeen: new Promise<void>((resolve) => (exitNow = resolve)),
    };
    this.#instances.set(id, instance);
    return instance;
  }

  #frame(kind: number, id: number, payload: Buffer): void {
    const instance = this.#instances.get(id);
    if (!instance) return;
    if (kind === FRAME.stdout) instance.hooks.stdout(payload);
    else if (kind === FRAME.stderr) instance.hooks.stderr(payload);
    else if (kind === FRAME.tar) {
      if (instance.pullFailed) return;
      instance.pullStarted ||= performance.now();
      // Backpressure: hold the channel (every instance on the host) while the extractor catches up.
      if (!instance.tar.write(payload)) {
        this.#channel.pause();
        const go = () => this.#channel.resume();
        instance.tar.once('drain', go).once('close', go);
      }
    } else if (kind === FRAME.tarEnd) {
      instance.tar.end();
      instance.tarEnded();
    } else if (kind === FRAME.event) {
      const event = JSON.parse(payload.toString()) as AgentEvent;
      if (event.type === 'exit') {
        instance.exit = event;
        instance.exitNow();
        instance.hooks.exited(event, Math.round(performance.now() - instance.started));
      } else if (event.type === 'error') instance.hooks.stderr(Buffer.from(`remote-runner: ${this.#alias}: ${event.message}\n`));
      else if (event.type === 'cleaned') {
        instance.cleaned = true;
        instance.cleanedNow();
      }
    }
  }

  #send(message: Record<string, unknown>): void {
    if (this.#channel.writable) this.#channel.write(`${JSON.stringify(message)}\n`);
  }
}
