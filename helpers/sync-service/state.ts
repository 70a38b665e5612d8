// The sync service's state: counters with barriers, and ordered topics with
// subscribers. Independent of the transport, so it can be tested on its own.
import { TgError } from '../shared/error.ts';
import { goMarshal } from './go-json.ts';
import { defaults } from './limits.ts';

/** Garbage-collection settings for topics; the defaults follow Testground's sync service. */
export interface GcOptions {
  /** How often idle topics are looked for. Default 10 minutes. */
  intervalMs?: number;
  /** A topic with no live subscriber is dropped after this much idle time. Default 10 minutes. */
  idleMs?: number;
}

/** Options of SyncState. */
export interface StateOptions {
  /** Idle collection of topics. Counters are never collected. */
  gc?: GcOptions;
  /** Most distinct states (signal_entry and barrier names) kept; a new one past it is refused. Default 100,000. */
  maxStates?: number;
}

interface Waiter {
  resolve: () => void;
}

interface Topic {
  messages: string[];
  followers: Set<() => void>;
  lastmod: number;
}

/** A subscription's place in its topic: every message, in order, each once. */
export interface Cursor {
  // The next message not yet taken, or undefined when there is none yet.
  take(): string | undefined;
}

// Counters, barriers and topics of one sync service.
export class SyncState {
  // A state's count is kept for the life of the service, so sequence numbers never
  // restart within a run; maxStates bounds how many there are.
  readonly #counts = new Map<string, number>();
  // Barrier waiters by state, then by target: the count grows by one at a time and a
  // waiter is only added below its target, so an entry wakes exactly those whose
  // target it reaches, without walking the rest.
  readonly #waiters = new Map<string, Map<number, Set<Waiter>>>();
  readonly #topics = new Map<string, Topic>();
  readonly #idleMs: number;
  readonly #maxStates: number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: StateOptions = {}) {
    this.#idleMs = options.gc?.idleMs ?? 10 * 60_000;
    this.#maxStates = options.maxStates ?? defaults.maxStates;
    this.#timer = setInterval(() => this.collect(), options.gc?.intervalMs ?? 10 * 60_000);
    this.#timer.unref();
  }

  // Count one entry into `state`; returns the 1-based count after it.
  signalEntry(state: string): number {
    const count = this.#count(state) + 1;
    this.#counts.set(state, count);
    const reached = this.#waiters.get(state)?.get(count);
    for (const waiter of reached ?? []) waiter.resolve();
    return count;
  }

  // Resolve once `state` has been entered `target` times; target 0 resolves at once.
  barrier(state: string, target: number, signal: AbortSignal): Promise<void> {
    if (target === 0) return Promise.resolve();
    if (this.#count(state) >= target) return Promise.resolve();
    signal.throwIfAborted();
    let byTarget = this.#waiters.get(state);
    if (!byTarget) {
      byTarget = new Map();
      this.#waiters.set(state, byTarget);
    }
    let waiters = byTarget.get(target);
    if (!waiters) {
      waiters = new Set();
      byTarget.set(target, waiters);
    }
    const targets = byTarget;
    const set = waiters;
    return new Promise((resolve, reject) => {
      const leave = () => {
        set.delete(waiter);
        if (set.size > 0 || targets.get(target) !== set) return;
        targets.delete(target);
        if (targets.size === 0 && this.#waiters.get(state) === targets) this.#waiters.delete(state);
      };
      const waiter: Waiter = {
        resolve: () => {
          leave();
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        leave();
        reject(signal.reason);
      };
      set.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  // Append a payload to `topic`, encoded as Go would; returns its 1-based sequence number.
  publish(topic: string, payload: unknown): number {
    return this.publishJson(topic, goMarshal(payload));
  }

  // Append a message already encoded by goMarshal; returns its 1-based sequence number.
  publishJson(topic: string, json: string): number {
    const t = this.#topic(topic);
    t.messages.push(json);
    t.lastmod = Date.now();
    for (const notify of t.followers) notify();
    return t.messages.length;
  }

  // Deliver every earlier message of `topic` in order, then each new one, until aborted.
  subscribe(topic: string, deliver: (json: string) => void, signal: AbortSignal): void {
    const drain = () => {
      for (let json = cursor.take(); json !== undefined; json = cursor.take()) deliver(json);
    };
    const cursor = this.follow(topic, drain, signal);
    drain();
  }

  // A cursor over every message of `topic`, earlier ones first; `notify` runs after each
  // new message, and the reader takes messages when it has room for them. Ends when aborted.
  follow(topic: string, notify: () => void, signal: AbortSignal): Cursor {
    if (signal.aborted) return { take: () => undefined };
    const t = this.#topic(topic);
    t.lastmod = Date.now();
    t.followers.add(notify);
    signal.addEventListener('abort', () => t.followers.delete(notify), { once: true });
    let next = 0;
    return { take: () => (signal.aborted || next >= t.messages.length ? undefined : t.messages[next++]) };
  }

  // Drop idle topics without live subscribers. Counters are kept.
  collect(now = Date.now()): { topics: number } {
    let topics = 0;
    for (const [name, t] of this.#topics) {
      if (t.followers.size === 0 && now - t.lastmod >= this.#idleMs) {
        this.#topics.delete(name);
        topics += 1;
      }
    }
    return { topics };
  }

  // Sizes, for tests and diagnostics.
  get size(): { topics: number; states: number; awaited: number } {
    return { topics: this.#topics.size, states: this.#counts.size, awaited: this.#waiters.size };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  // The count of `state`, creating it at 0 if the bound allows one more state.
  #count(state: string): number {
    const count = this.#counts.get(state);
    if (count !== undefined) return count;
    if (this.#counts.size >= this.#maxStates) {
      throw new TgError(
        'E_SYNC',
        `too many states: the service keeps ${this.#maxStates} distinct states (maxStates) and never forgets a count, so state ${JSON.stringify(state.slice(0, 200))} cannot be added`,
      );
    }
    this.#counts.set(state, 0);
    return 0;
  }

  #topic(topic: string): Topic {
    let t = this.#topics.get(topic);
    if (!t) {
      t = { messages: [], followers: new Set(), lastmod: Date.now() };
      this.#topics.set(topic, t);
    }
    return t;
  }
}
