// The byte stream an SSH connection runs over: a TCP connection to the host, or the stdin
// and stdout of a proxy, the ProxyCommand or, for ProxyJump, `ssh -W` to the last hop.
//
// ProxyJump runs the system's ssh, as OpenSSH itself does (`ssh -W '[%h]:%p' <hop>`): each
// hop is reached with the user's own config for it (its keys, agent, known hosts, its own
// proxies), which chaining ssh2 connections would have to rebuild. Host keys of the jump
// hosts are that ssh's business; the final host's key is still checked by us, pinned only.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { TgError, tail } from '../shared/error.ts';
import { terminateGroup } from '../shared/terminate.ts';
import type { SshTarget } from './ssh-config.ts';
import { expandTokens } from './tokens.ts';

/** An open byte stream to the host's sshd. */
export interface Transport {
  stream: Duplex;
  /** Settles once the stream is closed and any proxy's process group is gone, or GONE_LIMIT_MS after the call. */
  gone(): Promise<void>;
}

// A proxy gets TERM, then KILL after this long.
const PROXY_GRACE_MS = 2_000;
// How long `gone` waits for a killed proxy at most (a process stuck in the kernel).
const GONE_LIMIT_MS = 5_000;
const STDERR_KEPT_BYTES = 8 * 1024;

// Proxies alive in this process, killed if it exits while they run.
const live = new Set<ChildProcess>();
let exitHook = false;

function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const proxy of live) {
      try {
        process.kill(-proxy.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

// A proxy's stdin and stdout as one duplex stream. Destroying it kills the proxy's process
// group; the proxy ending on its own ends the stream, with an error naming its exit status.
class ProxyStream extends Duplex {
  readonly gone: Promise<void>;
  readonly #child: ChildProcess;
  #stderr = '';
  #ended = false;

  constructor(child: ChildProcess, what: string) {
    super({ allowHalfOpen: true });
    this.#child = child;
    const stdout = child.stdout!;
    stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    stdout.on('error', () => {});
    child.stdin!.on('error', () => {});
    child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-STDERR_KEPT_BYTES);
    });
    // What the proxy left in the background dies with it, and lets its output close.
    const sweep = (): Promise<void> => (child.pid === undefined ? Promise.resolve() : terminateGroup(child, PROXY_GRACE_MS));
    child.once('exit', () => void sweep());
    // The stream ends only once the proxy is gone, so that ssh2 hears its exit status first.
    this.gone = new Promise<void>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        this.destroy(new TgError('E_SSH', `cannot start the ${what}: ${error.code ?? error.message}`, { cause: error }));
        resolve();
      });
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (!this.destroyed) {
          // Exiting after we ended its input is the normal end; anything else is news.
          const status = signal ? `was killed by ${signal}` : `exited ${code}`;
          const stderr = tail(this.#stderr, 3);
          this.destroy(this.#ended ? undefined : new Error(`the ${what} ${status}${stderr ? `: ${stderr}` : ' (nothing on stderr)'}`));
        }
        void sweep().then(resolve);
      });
    });
  }

  override _read(): void {
    this.#child.stdout!.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A failed write is not reported here: the proxy's exit, with its status, is.
    if (this.#child.stdin!.writable) this.#child.stdin!.write(chunk, () => callback());
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ended = true;
    this.#child.stdin!.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#child.pid !== undefined) void terminateGroup(this.#child, PROXY_GRACE_MS);
    callback(error);
  }
}

// Start a proxy in a process group of its own, so that all of it can be killed.
function spawnProxy(file: string, args: string[]): ChildProcess {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  if (child.pid !== undefined) killOnExit(child);
  return child;
}

// The ProxyCommand with its tokens expanded, as ssh expands them.
export function proxyCommandLine(target: SshTarget, command: string): string {
  const tokens = { h: target.hostname, p: String(target.port), r: target.user, n: target.alias };
  return expandTokens(command, tokens, `ssh ${target.alias}: ProxyCommand ${command}`);
}

// The ssh arguments that make the ProxyJump hops' tunnel, as OpenSSH builds them.
export function proxyJumpArgs(target: SshTarget, hops: NonNullable<SshTarget['proxyJump']>): string[] {
  const last = hops.at(-1)!;
  return [
    ...(last.user !== undefined ? ['-l', last.user] : []),
    ...(last.port !== undefined ? ['-p', String(last.port)] : []),
    ...(hops.length > 1 ? ['-J', hops.slice(0, -1).map((hop) => hop.spec).join(',')] : []),
    ...(target.configFile !== undefined ? ['-F', target.configFile] : []),
    '-W',
    `[${target.hostname}]:${target.port}`,
    last.host,
  ];
}

// How `target` is reached, for messages: '' when directly.
export function routeOf(target: SshTarget): string {
  if (target.proxyCommand !== undefined) return 'through ProxyCommand';
  if (target.proxyJump !== undefined && target.proxyJump.length > 0) return `through ProxyJump ${target.proxyJump.map((hop) => hop.spec).join(',')}`;
  return '';
}

// Open the stream to `target`'s sshd: direct, or through its ProxyCommand or ProxyJump.
export function openTransport(target: SshTarget): Transport {
  if (target.proxyCommand !== undefined) {
    // As OpenSSH runs it: `$SHELL -c 'exec <command>'`.
    const line = proxyCommandLine(target, target.proxyCommand);
    const shell = process.env.SHELL || '/bin/sh';
    return proxied(spawnProxy(shell, ['-c', `exec ${line}`]), 'ProxyCommand');
  }
  if (target.proxyJump !== undefined && target.proxyJump.length > 0) {
    const hops = target.proxyJump.map((hop) => hop.spec).join(',');
    return proxied(spawnProxy('ssh', proxyJumpArgs(target, target.proxyJump)), `ssh -W through ProxyJump ${hops}`);
  }
  // No Nagle: every exec, forward and window update is a small request that waits
  // for its answer, and would otherwise sit out the peer's delayed ACK.
  const family = target.addressFamily === 'inet' ? 4 : target.addressFamily === 'inet6' ? 6 : 0;
  const stream = net.connect({ host: target.hostname, port: target.port, noDelay: true, family });
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return { stream, gone: () => closed };
}

function proxied(child: ChildProcess, what: string): Transport {
  const stream = new ProxyStream(child, what);
  return { stream, gone: () => Promise.race([stream.gone, sleep(GONE_LIMIT_MS, undefined, { ref: false })]) };
}
