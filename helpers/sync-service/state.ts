// The sync service's state: counters with barriers, and ordered topics with
// subscribers. Independent of the transport, so it can be tested on its own.
import { goMarshal } from './go-json.ts';

/** Garbage-collection settings; the defaults follow Testground's sync service. */
export interface GcOptions {
  /** How often idle topics and barriers are looked for. Default 10 minutes. */
  intervalMs?: number;
  /** A topic with no live subscriber, or a barrier with no waiter, is dropped after this much idle time. Default 10 minutes. */
  idleMs?: number;
}

interface Waiter {
  target: number;
  resolve: () => void;
}

interface Barrier {
  count: number;
  waiters: Set<Waiter>;
  lastmod: number;
}

type Deliver = (json: string) => void;

interface Topic {
  messages: string[];
  subscribers: Set<Deliver>;
  lastmod: number;
}

export class SyncState {
  readonly #barriers = new Map<string, Barrier>();
  readonly #topics = new Map<string, Topic>();
  readonly #idleMs: number;
  readonly #timer: NodeJS.Timeout;

  constructor(gc: GcOptions = {}) {
    this.#idleMs = gc.idleMs ?? 10 * 60_000;
    this.#timer = setInterval(() => this.collect(), gc.intervalMs ?? 10 * 60_000);
    this.#timer.unref();
  }

  // Count one entry into `state`; returns the 1-based count after it.
  signalEntry(state: string): number {
    const barrier = this.#barrier(state);
    barrier.count += 1;
    barrier.lastmod = Date.now();
    for (const waiter of barrier.waiters) {
      if (barrier.count >= waiter.target) {
        barrier.waiters.delete(waiter);
        waiter.resolve();
      }
    }
    return barrier.count;
  }

  // Resolve once `state` has been entered `target` times; target 0 resolves at once.
  barrier(state: string, target: number, signal: AbortSignal): Promise<void> {
    if (target === 0) return Promise.resolve();
    const barrier = this.#barrier(state);
    barrier.lastmod = Date.now();
    if (barrier.count >= target) return Promise.resolve();
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        target,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        barrier.waiters.delete(waiter);
        reject(signal.reason);
      };
      barrier.waiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  // Append a payload to `topic`; returns its 1-based sequence number.
  publish(topic: string, payload: unknown): number {
    const t = this.#topic(topic);
    const json = goMarshal(payload);
    t.messages.push(json);
    t.lastmod = Date.now();
    for (const deliver of t.subscribers) deliver(json);
    return t.messages.length;
  }

  // Deliver every earlier message of `topic` in order, then each new one, until aborted.
  subscribe(topic: string, deliver: Deliver, signal: AbortSignal): void {
    if (signal.aborted) return;
    const t = this.#topic(topic);
    t.lastmod = Date.now();
    for (const json of t.messages) deliver(json);
    t.subscribers.add(deliver);
    signal.addEventListener('abort', () => t.subscribers.delete(deliver), { once: true });
  }

  // Drop idle topics without live subscribers and idle barriers without waiters.
  collect(now = Date.now()): { topics: number; barriers: number } {
    let topics = 0;
    let barriers = 0;
    for (const [name, t] of this.#topics) {
      if (t.subscribers.size === 0 && now - t.lastmod >= this.#idleMs) {
        this.#topics.delete(name);
        topics += 1;
      }
    }
    for (const [name, b] of this.#barriers) {
      if (b.waiters.size === 0 && now - b.lastmod >= this.#idleMs) {
        this.#barriers.delete(name);
        barriers += 1;
      }
    }
    return { topics, barriers };
  }

  // Sizes, for tests and diagnostics.
  get size(): { topics: number; barriers: number } {
    return { topics: this.#topics.size, barriers: this.#barriers.size };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #barrier(state: string): Barrier {
    let b = this.#barriers.get(state);
    if (!b) {
      b = { count: 0, waiters: new Set(), lastmod: Date.now() };
      this.#barriers.set(state, b);
    }
    return b;
  }

  #topic(topic: string): Topic {
    let t = this.#topics.get(topic);
    if (!t) {
      t = { messages: [], subscribers: new Set(), lastmod: Date.now() };
      this.#topics.set(topic, t);
    }
    return t;
  }
}
