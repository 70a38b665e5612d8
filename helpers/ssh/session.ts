// One SSH connection to a resolved target, direct or through its proxy: pinned host keys
// only, keys offered as OpenSSH offers them, keepalives, commands, and reverse forwards to
// local TCP services.
import net from 'node:net';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, ClientChannel, ServerHostKeyAlgorithm, TcpConnectionDetails } from 'ssh2';
import { TgError } from '../shared/error.ts';
import { fingerprint, keyTypeOf } from '../shared/ssh-key.ts';
import { planAuth } from './auth.ts';
import { knownHostsName, knownKeyTypes, loadKnownHosts, verifyHostKey, type HostKeyLookup } from './known-hosts.ts';
import type { SshTarget } from './ssh-config.ts';
import { openTransport, routeOf, type Transport } from './transport.ts';

/** What a finished remote command left: its exit code or signal, and its (bounded) output. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A remote (reverse) forward: `port` on the remote's loopback reaches a local TCP service. */
export interface RemoteForward {
  port: number;
  close(): Promise<void>;
}

/** An open SSH connection. */
export interface SshSession {
  readonly target: SshTarget;
  exec(command: string, options?: { signal?: AbortSignal }): Promise<ClientChannel>;
  run(command: string, options?: { stdin?: string | Buffer; signal?: AbortSignal; maxOutputBytes?: number }): Promise<RunResult>;
  forwardIn(bindHost: '127.0.0.1', target: { host: string; port: number }, options?: { signal?: AbortSignal }): Promise<RemoteForward>;
  /** Settles when the connection ends: undefined after close(), an Error if it was lost. */
  readonly closed: Promise<Error | undefined>;
  close(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 15_000;
const DEFAULT_KEEPALIVE_MS = 3_000;
const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
const CLOSE_GRACE_MS = 2_000;
// ssh2's own default host key algorithms, in its order; pinned key types go first.
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
const ALGORITHMS_FOR_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = { 'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] };

type SshError = Error & { level?: string; code?: string | number };

// Host key algorithms with the types pinned for this host first, as OpenSSH orders them.
function hostKeyAlgorithms(pinnedTypes: string[]): ServerHostKeyAlgorithm[] {
  const supported = (name: string): name is ServerHostKeyAlgorithm => (HOST_KEY_ALGORITHMS as string[]).includes(name);
  const preferred = pinnedTypes.flatMap((type) => ALGORITHMS_FOR_KEY_TYPE[type] ?? [type]).filter(supported);
  return [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])];
}

// The cause of a failed connect (given its time limit) or of a lost connection, in words.
function describe(error: SshError, readyTimeoutMs?: number): string {
  const timedOut = readyTimeoutMs === undefined ? 'timed out' : `timed out after ${readyTimeoutMs / 1000} s`;
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return timedOut;
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host name (${error.code})`;
  }
  if (error.level === 'client-timeout' && /handshake/i.test(error.message)) return timedOut;
  return error.message;
}

// Connect to `target` and log in; rejects with E_SSH naming the alias, the address and the cause.
export async function openSsh(target: SshTarget, options: { signal?: AbortSignal; readyTimeoutMs?: number } = {}): Promise<SshSession> {
  const { signal } = options;
  signal?.throwIfAborted();
  const route = routeOf(target);
  const where = `ssh ${target.alias} (${target.hostname}:${target.port}${route ? ` ${route}` : ''})`;
  const knownHostsFiles = [...target.userKnownHostsFiles, ...target.globalKnownHostsFiles];
  const entries = await loadKnownHosts(knownHostsFiles, signal ? { signal } : {});
  const plan = await planAuth(target, signal);
  signal?.throwIfAborted();
  const readyTimeoutMs = options.readyTimeoutMs ?? target.connectTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const keepalive = { ms: target.serverAliveIntervalMs ?? DEFAULT_KEEPALIVE_MS, countMax: target.serverAliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX };
  const lookup: HostKeyLookup = { host: target.hostname, port: target.port, hostKeyAlias: target.hostKeyAlias };
  const name = knownHostsName(lookup);
  const noTofu = `keys are never accepted on first use or when changed, whatever StrictHostKeyChecking says (it is '${target.strictHostKeyChecking}')`;

  let hostKeyRefusal: TgError | undefined;
  const hostVerifier = (key: Buffer): boolean => {
    const verdict = verifyHostKey(entries, lookup, key);
    if (verdict.ok) return true;
    const presented = `${keyTypeOf(key) ?? 'unknown type'} ${fingerprint(key)}`;
    const line = verdict.entry ? `${verdict.entry.file} (line ${verdict.entry.line})` : '';
    const message =
      verdict.reason === 'changed'
        ? `${where}: host key for ${name} has CHANGED (fingerprint ${fingerprint(key)}) — refusing to connect; fix ${line} (${noTofu})`
        : verdict.reason === 'revoked'
          ? `${where}: host key for ${name} is REVOKED (fingerprint ${fingerprint(key)}) by ${line} — refusing to connect`
          : `${where}: host key is not in ${knownHostsFiles.join(', ') || '(no known_hosts files)'} — refusing (add it with ssh-keyscan after checking it; ${name} presented ${presented}; ${noTofu})`;
    hostKeyRefusal = new TgError('E_SSH', message);
    return false;
  };

  const queue = [...plan.attempts];
  const tried: string[] = [];
  const notes: string[] = plan.agentProblem ? [plan.agentProblem] : [];
  const authHandler: AuthHandlerMiddleware = (_methodsLeft, _partialSuccess, next) => {
    const nextAttempt = queue.shift();
    // `false` ends authentication: ssh2 accepts it, its types do not say so.
    if (!nextAttempt) return next(false as unknown as AnyAuthMethod);
    tried.push(nextAttempt.label);
    next(nextAttempt.method);
  };
  const keysReport = (): string => {
    const skipped = plan.skipped.length ? `; skipped: ${plan.skipped.join(', ')}` : '';
    const extra = notes.length ? `; ${notes.join('; ')}` : '';
    return `tried: ${tried.join(', ') || 'nothing'}${skipped}${extra}`;
  };
  const noKeyAccepted = (): TgError => new TgError('E_SSH', `${where}: no key was accepted (${keysReport()})`);
  // The host hanging up mid-login: sshd does so after MaxAuthTries refused keys (6 by default).
  const disconnectedAtLogin = (error: SshError): TgError => {
    const hint =
      /too many authentication failures/i.test(error.message) && !target.identitiesOnly
        ? '; the host allows only so many keys (sshd\'s MaxAuthTries): set IdentitiesOnly yes for it, so that only its IdentityFile keys are offered'
        : '';
    return new TgError('E_SSH', `${where}: the host ended the login: ${error.message} (${keysReport()}${hint})`, { cause: error });
  };

  const client = new ssh2.Client();
  // Our own stream, open before ssh2 gets it: ssh2's destroy() does nothing once the
  // socket is half-closed, and an abort or a stuck close must always be able to drop it.
  const transport = openTransport(target);
  const sock = transport.stream;
  return await new Promise<SshSession>((resolve, reject) => {
    let settled = false;
    let lastError: SshError | undefined;
    const finish = (error: unknown, session?: SshSession): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      client.removeListener('ready', onReady);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (session) return resolve(session);
      client.on('error', () => {});
      sock.destroy();
      // A proxy is gone before the caller hears of the failure.
      void transport.gone().then(() => reject(error));
    };
    const onAbort = (): void => finish(signal!.reason);
    const onReady = (): void => finish(undefined, makeSession(client, transport, target, where, keepalive));
    const onError = (error: SshError): void => {
      // ssh2 reports an unusable agent or a failed signature, then goes on with the next method.
      if (error.level === 'agent') return void notes.push(`the agent failed: ${error.message}`);
      if (error.level === 'client-authentication' && !/All configured authentication methods failed/.test(error.message)) {
        return void notes.push(error.message);
      }
      lastError = error;
      if (hostKeyRefusal) return finish(hostKeyRefusal);
      if (error.level === 'client-authentication') return finish(noKeyAccepted());
      // A numeric code is the reason of an SSH_MSG_DISCONNECT from the host.
      if (typeof error.code === 'number' && tried.length > 0) return finish(disconnectedAtLogin(error));
      finish(new TgError('E_SSH', `${where}: ${describe(error, readyTimeoutMs)}`, { cause: error }));
    };
    const onClose = (): void => {
      if (hostKeyRefusal) return finish(hostKeyRefusal);
      const cause = lastError ? describe(lastError, readyTimeoutMs) : 'the connection closed before login';
      finish(new TgError('E_SSH', `${where}: ${cause}`, { cause: lastError }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    client.on('ready', onReady).on('error', onError).on('close', onClose);
    try {
      client.connect({
        sock,
        username: target.user,
        hostVerifier,
        authHandler,
        // An exact list: ssh2's `prepend` skips names already in its defaults instead of moving them.
        algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(entries, lookup)) },
        keepaliveInterval: keepalive.ms,
        keepaliveCountMax: keepalive.countMax,
        readyTimeout: readyTimeoutMs,
      });
    } catch (error) {
      finish(new TgError('E_SSH', `${where}: ${(error as Error).message}`, { cause: error }));
    }
  });
}

// Stop a remote command: SIGTERM to its process group (sshd refuses this for root logins),
// EOF on its stdin, and a close. sshd keeps the channel, and the command, until it exits.
function stopChannel(channel: ClientChannel): void {
  try {
    channel.signal('TERM');
    channel.end();
    channel.close();
  } catch {
    // the connection is gone, and the command's channel with it
  }
}

interface Operation<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  settled(): boolean;
  onFailure(cleanup: () => void): void;
}

interface ForwardState {
  bindHost: string;
  target: { host: string; port: number };
  links: Set<{ socket: net.Socket; channel: ClientChannel }>;
}

// Output of one stream, kept up to `max` bytes.
function collector(max: number): { push(chunk: Buffer): void; text(): string } {
  const chunks: Buffer[] = [];
  let size = 0;
  let dropped = 0;
  return {
    push(chunk) {
      const kept = Math.min(Math.max(max - size, 0), chunk.length);
      if (kept > 0) chunks.push(chunk.subarray(0, kept));
      size += kept;
      dropped += chunk.length - kept;
    },
    text() {
      const text = Buffer.concat(chunks).toString('utf8');
      return dropped ? `${text}\n[${dropped} more bytes not kept]` : text;
    },
  };
}

// The session over a logged-in client: tracks pending operations, forwards and the end of the connection.
function makeSession(
  client: InstanceType<typeof ssh2.Client>,
  transport: Transport,
  target: SshTarget,
  where: string,
  keepalive: { ms: number; countMax: number },
): SshSession {
  const pending = new Set<(error: Error) => void>();
  const forwards = new Map<number, ForwardState>();
  let closing = false;
  let ended: Error | undefined;
  let lastError: SshError | undefined;
  let settleClosed!: (error: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((resolve) => (settleClosed = resolve));
  let closePromise: Promise<void> | undefined;

  const lostError = (): TgError => {
    const cause =
      lastError?.level === 'client-timeout'
        ? `no answer to ${keepalive.countMax} keepalives sent every ${keepalive.ms / 1000} s`
        : lastError
          ? describe(lastError)
          : 'closed by the remote host';
    return new TgError('E_SSH', `${where}: connection lost: ${cause}`, { cause: lastError });
  };
  const dropLinks = (state: ForwardState): void => {
    for (const { socket, channel } of state.links) {
      socket.destroy();
      try {
        channel.close();
      } catch {
        // the connection is gone
      }
    }
    state.links.clear();
  };

  client.on('error', (error: SshError) => {
    lastError ??= error;
  });
  client.on('close', () => {
    if (ended) return;
    ended = closing ? new TgError('E_SSH', `${where}: the session is closed`) : lostError();
    for (const state of forwards.values()) dropLinks(state);
    forwards.clear();
    for (const fail of [...pending]) fail(ended);
    // Settled once a proxy is gone too, so that close() leaves no process behind.
    const outcome = closing ? undefined : ended;
    void transport.gone().then(() => settleClosed(outcome));
  });
  client.on('tcp connection', (details: TcpConnectionDetails, accept, rejectConnection) => {
    const state = forwards.get(details.destPort);
    if (!state || details.destIP !== state.bindHost) return rejectConnection();
    const channel = accept();
    const socket = net.connect({ host: state.target.host, port: state.target.port, noDelay: true });
    const link = { socket, channel };
    state.links.add(link);
    socket.on('error', () => {
      try {
        channel.close();
      } catch {
        // the connection is gone
      }
    });
    channel.on('error', () => socket.destroy());
    channel.on('close', () => {
      socket.destroy();
      state.links.delete(link);
    });
    channel.pipe(socket).pipe(channel);
  });

  // Run `body` as an operation that the signal aborts and a lost connection rejects.
  const operation = <T>(signal: AbortSignal | undefined, body: (op: Operation<T>) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (ended) return reject(ended);
      if (signal?.aborted) return reject(signal.reason);
      let done = false;
      const cleanups: (() => void)[] = [];
      const settle = (failed: boolean): void => {
        done = true;
        pending.delete(fail);
        signal?.removeEventListener('abort', onAbort);
        if (failed) for (const cleanup of cleanups) cleanup();
      };
      const fail = (error: unknown): void => {
        if (done) return;
        settle(true);
        reject(error);
      };
      const onAbort = (): void => fail(signal!.reason);
      pending.add(fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      const op: Operation<T> = {
        resolve: (value) => {
          if (done) return;
          settle(false);
          resolve(value);
        },
        reject: fail,
        settled: () => done,
        onFailure: (cleanup) => void cleanups.push(cleanup),
      };
      try {
        body(op);
      } catch (error) {
        fail(ended ?? new TgError('E_SSH', `${where}: ${(error as Error).message}`, { cause: error }));
      }
    });

  const exec: SshSession['exec'] = async (command, options = {}) => {
    const { signal } = options;
    const channel = await operation<ClientChannel>(signal, (op) => {
      client.exec(command, (error, channel) => {
        if (error) return op.reject(ended ?? new TgError('E_SSH', `${where}: cannot start ${JSON.stringify(command)}: ${error.message}`, { cause: error }));
        if (op.settled()) return stopChannel(channel);
        op.resolve(channel);
      });
    });
    if (signal) {
      const onAbort = (): void => stopChannel(channel);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        channel.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    return channel;
  };

  const run: SshSession['run'] = async (command, options = {}) => {
    const { signal, stdin, maxOutputBytes = DEFAULT_MAX_OUTPUT_BYTES } = options;
    return await operation<RunResult>(signal, (op) => {
      client.exec(command, (error, channel) => {
        if (error) return op.reject(ended ?? new TgError('E_SSH', `${where}: cannot start ${JSON.stringify(command)}: ${error.message}`, { cause: error }));
        if (op.settled()) return stopChannel(channel);
        // The listeners go on in this callback: a quick command's exit status can come in
        // the same packet as the exec's confirmation, and ssh2 emits it before any
        // awaiting code could listen (the exit code was then lost, null).
        const stdout = collector(maxOutputBytes);
        const stderr = collector(maxOutputBytes);
        let code: number | null = null;
        let exitSignal: string | null = null;
        op.onFailure(() => stopChannel(channel));
        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (exitCode: number | null, signalName?: string) => {
          code = exitCode ?? null;
          exitSignal = signalName ? `SIG${signalName.replace(/^SIG/, '')}` : null;
        });
        channel.on('close', () => {
          if (ended && code === null && exitSignal === null) return op.reject(ended);
          op.resolve({ code, signal: exitSignal, stdout: stdout.text(), stderr: stderr.text() });
        });
        channel.on('error', (error: Error) => op.reject(new TgError('E_SSH', `${where}: ${JSON.stringify(command)}: ${error.message}`, { cause: error })));
        if (stdin !== undefined) channel.end(stdin);
        else channel.end();
      });
    });
  };

  const forwardIn: SshSession['forwardIn'] = async (bindHost, to, options = {}) => {
    const state: ForwardState = { bindHost, target: { host: to.host, port: to.port }, links: new Set() };
    const port = await operation<number>(options.signal, (op) => {
      client.forwardIn(bindHost, 0, (error, port) => {
        if (error) {
          return op.reject(ended ?? new TgError('E_SSH', `${where}: cannot forward a port on ${bindHost} of the remote to ${to.host}:${to.port}: ${error.message}`, { cause: error }));
        }
        if (op.settled()) {
          try {
            client.unforwardIn(bindHost, port, () => {});
          } catch {
            // the connection is gone, and the forward with it
          }
          return;
        }
        // Registered here, not after the await: a connection may arrive in the same read.
        forwards.set(port, state);
        op.resolve(port);
      });
    });
    let closing: Promise<void> | undefined;
    return {
      port,
      close: () =>
        (closing ??= new Promise<void>((resolve) => {
          if (forwards.get(port) === state) forwards.delete(port);
          dropLinks(state);
          if (ended) return resolve();
          try {
            client.unforwardIn(bindHost, port, () => resolve());
          } catch {
            resolve();
          }
        })),
    };
  };

  const close = (): Promise<void> =>
    (closePromise ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      if (!ended) {
        closing = true;
        for (const state of forwards.values()) dropLinks(state);
        client.end();
        timer = setTimeout(() => transport.stream.destroy(), CLOSE_GRACE_MS);
      }
      // Also after a loss: `closed` waits for a proxy to be gone.
      await closed;
      clearTimeout(timer);
    })());

  return { target, exec, run, forwardIn, closed, close };
}
