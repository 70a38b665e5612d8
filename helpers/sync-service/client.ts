// A small sync-service client with AbortSignal support, used by our helpers.
// Keys are scoped to a run exactly as the Testground SDKs scope them.
import WebSocket from 'ws';
import { TgError } from '../shared/error.ts';
import type { Response } from './protocol.ts';

/** The run a client's states and topics belong to. */
export interface RunScope {
  run: string;
  plan: string;
  testCase: string;
}

// The key prefixes Testground's SDKs use for one run.
export function runKeys(scope: RunScope) {
  const prefix = `run:${scope.run}:plan:${scope.plan}:case:${scope.testCase}`;
  return {
    state: (name: string) => `${prefix}:states:${name}`,
    topic: (name: string) => `${prefix}:topics:${name}`,
    events: `${prefix}:run_events`,
  };
}

type Pending = { onFrame: (res: Response) => void; onClose: (error: Error) => void };

export class SyncClient {
  readonly #socket: WebSocket;
  readonly #url: string;
  readonly #pending = new Map<string, Pending>();
  #next = 0;
  #closedError: Error | undefined;
  #closing = false;
  #onLost!: (error: TgError) => void;
  /** Settles only if the connection drops without close() being called. */
  readonly lost: Promise<TgError> = new Promise((resolve) => (this.#onLost = resolve));

  private constructor(socket: WebSocket, url: string) {
    this.#socket = socket;
    this.#url = url;
    socket.on('message', (data) => {
      let res: Response;
      try {
        res = JSON.parse(data.toString()) as Response;
      } catch {
        return;
      }
      this.#pending.get(res.id)?.onFrame(res);
    });
    socket.on('close', () => {
      if (!this.#closing) this.#onLost(new TgError('E_SYNC', `sync service ${url}: connection lost`));
      this.#closedError ??= new TgError('E_SYNC', `sync service ${url}: connection closed`);
      for (const p of [...this.#pending.values()]) p.onClose(this.#closedError);
      this.#pending.clear();
    });
    socket.on('error', (error) => {
      this.#closedError ??= new TgError('E_SYNC', `sync service ${url}: ${error.message}`, { cause: error });
    });
  }

  // Connect to `url` (ws://host:port); rejects with E_SYNC naming the address.
  static async connect(url: string, options: { signal?: AbortSignal } = {}): Promise<SyncClient> {
    options.signal?.throwIfAborted();
    const socket = new WebSocket(url, { handshakeTimeout: 10_000 });
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(options.signal!.reason);
        options.signal?.addEventListener('abort', onAbort, { once: true });
        socket.once('open', () => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve();
        });
        socket.once('error', (error) => {
          options.signal?.removeEventListener('abort', onAbort);
          reject(new TgError('E_SYNC', `sync service ${url}: cannot connect: ${error.message}`, { cause: error }));
        });
      });
    } catch (error) {
      socket.terminate();
      throw error;
    }
    return new SyncClient(socket, url);
  }

  // Signal entry into `state`; resolves with the 1-based count.
  async signalEntry(state: string, signal?: AbortSignal): Promise<number> {
    const res = await this.#once({ signal_entry: { state } }, signal);
    return res.signal_entry!.seq;
  }

  // Wait until `state` has been entered `target` times.
  async barrier(state: string, target: number, signal?: AbortSignal): Promise<void> {
    await this.#once({ barrier: { state, target } }, signal);
  }

  // Publish `payload` on `topic`; resolves with its 1-based sequence number.
  async publish(topic: string, payload: unknown, signal?: AbortSignal): Promise<number> {
    const res = await this.#once({ publish: { topic, payload } }, signal);
    return res.publish!.seq;
  }

  // Every message of `topic`, earlier ones first; ends when `signal` aborts.
  async *subscribe(topic: string, signal?: AbortSignal): AsyncGenerator<unknown> {
    const id = this.#send({ subscribe: { topic } });
    const queue: unknown[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const poke = () => {
      wake?.();
      wake = undefined;
    };
    this.#pending.set(id, {
      onFrame: (res) => {
        if (res.error) failure = new TgError('E_SYNC', `sync service ${this.#url}: subscribe ${topic}: ${res.error}`);
        else queue.push(JSON.parse(res.subscribe));
        poke();
      },
      onClose: (error) => {
        failure = error;
        poke();
      },
    });
    signal?.addEventListener('abort', poke, { once: true });
    try {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift();
          continue;
        }
        if (failure) throw failure;
        signal?.throwIfAborted();
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal?.removeEventListener('abort', poke);
      this.#pending.delete(id);
      if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify({ id, is_cancel: true }));
    }
  }

  close(): void {
    this.#closing = true;
    this.#closedError ??= new TgError('E_SYNC', `sync service ${this.#url}: client closed`);
    this.#socket.close();
  }

  #send(body: Record<string, unknown>): string {
    if (this.#closedError) throw this.#closedError;
    const id = String(this.#next++);
    this.#socket.send(JSON.stringify({ id, ...body }));
    return id;
  }

  #once(body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
    signal?.throwIfAborted();
    const id = this.#send(body);
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(id);
        if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify({ id, is_cancel: true }));
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      this.#pending.set(id, {
        onFrame: (res) => {
          done();
          if (res.error) reject(new TgError('E_SYNC', `sync service ${this.#url}: ${Object.keys(body)[0]}: ${res.error}`));
          else resolve(res);
        },
        onClose: (error) => {
          done();
          reject(error);
        },
      });
    });
  }
}
