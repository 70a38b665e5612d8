// What one connection has queued to write, kept bounded. Subscription messages are
// only queued while there is room (they wait in their topic otherwise), and a client
// that stops reading is closed instead of being buffered for without end.
import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { subscriptionRoomBytes } from './limits.ts';

/** Limits of one connection's queue. */
export interface OutboxLimits {
  maxQueuedBytes: number;
  stallTimeoutMs: number;
}

/** The close code a slow consumer sees: 1008, policy violation. */
export const slowConsumerCode = 1008;

// Holds back the writes of one turn of the event loop and lets each connection's leave
// together, once all I/O of the turn is handled: a publish read in the same turn as
// others then reaches each subscriber in one writev, not one system call per frame.
// Past `maxBytes` held, everything held leaves at once, so a wide fan-out in one turn
// costs a bounded amount of memory.
export class WriteBatch {
  readonly #maxBytes: number;
  #pending: Array<() => void> = [];
  #bytes = 0;
  #scheduled = false;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  // Run `flush` once the current turn's I/O callbacks are done, or sooner when too much is held.
  defer(flush: () => void): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
    this.#pending.push(flush);
  }

  // Count `bytes` more held back.
  hold(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes > this.#maxBytes) this.#flushAll();
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    this.#flushAll();
  };

  #flushAll(): void {
    const pending = this.#pending;
    this.#pending = [];
    this.#bytes = 0;
    for (const flush of pending) flush();
  }
}

// Bytes waiting in the service's own buffers, over all connections. Subscription messages
// are only queued while the total is under `maxBytes`, so that many subscribers reading
// slower than their topics grow cannot make the service hold their backlogs; connections
// turned away are woken, in the order they came, once the total is back under half.
export class SendBudget {
  readonly #maxBytes: number;
  #queued = 0;
  #waiting = new Set<() => void>();

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get hasRoom(): boolean {
    return this.#queued < this.#maxBytes;
  }

  // Run `wake` once the total is back under half of maxBytes.
  wait(wake: () => void): void {
    this.#waiting.add(wake);
  }

  forget(wake: () => void): void {
    this.#waiting.delete(wake);
  }

  // Count `delta` more bytes waiting; negative when they reached the kernel or were dropped.
  adjust(delta: number): void {
    this.#queued += delta;
    if (delta < 0 && this.#waiting.size > 0 && this.#queued < this.#maxBytes / 2) {
      const waiting = this.#waiting;
      this.#waiting = new Set();
      for (const wake of waiting) wake();
    }
  }
}

/** What the outboxes of one service share. */
export interface SharedWrites {
  batch: WriteBatch;
  budget: SendBudget;
}

// One connection's bounded send queue, with the stall watch that closes a client that stopped reading.
export class Outbox {
  readonly #socket: WebSocket;
  readonly #raw: Writable;
  readonly #batch: WriteBatch;
  readonly #budget: SendBudget;
  readonly #limits: OutboxLimits;
  readonly #onRoom: () => void;
  readonly #onSlow: (reason: string, detail: string) => void;
  #waitingForRoom = false;
  #stall: NodeJS.Timeout | undefined;
  #corked = false;
  #closed = false;
  // What this connection has counted in the budget: its bufferedAmount when last looked at.
  #counted = 0;

  // `raw` is the TCP socket under `socket`, corked while the batch holds this turn's writes.
  // `onRoom` runs when room opens again after `hasRoom` said no; `onSlow` once, when the client is dropped.
  constructor(
    socket: WebSocket,
    raw: Writable,
    shared: SharedWrites,
    limits: OutboxLimits,
    onRoom: () => void,
    onSlow: (reason: string, detail: string) => void,
  ) {
    this.#socket = socket;
    this.#raw = raw;
    this.#batch = shared.batch;
    this.#budget = shared.budget;
    this.#limits = limits;
    this.#onRoom = onRoom;
    this.#onSlow = onSlow;
  }

  // Whether a subscription message may be queued now: while less than subscriptionRoomBytes
  // waits in our buffers for this connection (the kernel's hold the rest), never past half
  // the queue, which is kept for replies, and while the service-wide budget has room.
  get hasRoom(): boolean {
    const room =
      !this.#closed &&
      this.#socket.readyState === this.#socket.OPEN &&
      this.#socket.bufferedAmount < Math.min(subscriptionRoomBytes, this.#limits.maxQueuedBytes / 2);
    if (!room) {
      this.#waitingForRoom = true;
      return false;
    }
    if (!this.#budget.hasRoom) {
      this.#budget.wait(this.#wake);
      return false;
    }
    return true;
  }

  // Queue one frame; a queue past maxQueuedBytes closes the connection instead.
  send(text: string): void {
    if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) return;
    const queued = this.#socket.bufferedAmount;
    const bytes = Buffer.byteLength(text);
    if (queued + bytes > this.#limits.maxQueuedBytes) {
      this.#drop('slow consumer: send queue full', `${queued} bytes queued and not read; ${bytes} more would pass the limit of ${this.#limits.maxQueuedBytes}`);
      return;
    }
    if (!this.#corked) {
      this.#corked = true;
      this.#raw.cork();
      this.#batch.defer(this.#flush);
    }
    this.#socket.send(text, this.#written);
    this.#account();
    this.#batch.hold(bytes);
  }

  // Stop for good, without closing the socket: the connection is going away.
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#stall);
    this.#stall = undefined;
    this.#budget.forget(this.#wake);
    this.#budget.adjust(-this.#counted);
    this.#counted = 0;
  }

  // Bring this connection's share of the budget up to date.
  #account(): void {
    if (this.#closed) return;
    const now = this.#socket.bufferedAmount;
    if (now === this.#counted) return;
    const delta = now - this.#counted;
    this.#counted = now;
    this.#budget.adjust(delta);
  }

  // The budget has room again.
  readonly #wake = (): void => {
    if (!this.#closed) this.#onRoom();
  };

  // Let this turn's frames go, in one writev; watch for a client that stops reading.
  readonly #flush = (): void => {
    this.#corked = false;
    this.#raw.uncork();
    this.#account();
    if (this.#closed || this.#stall || this.#socket.bufferedAmount === 0) return;
    this.#stall = setTimeout(() => {
      this.#drop('slow consumer: nothing read', `no write progress for ${this.#limits.stallTimeoutMs} ms with ${this.#socket.bufferedAmount} bytes queued`);
    }, this.#limits.stallTimeoutMs);
    this.#stall.unref();
  };

  // A write reached the kernel: the client is reading, at least a little.
  readonly #written = (): void => {
    if (this.#closed) return;
    this.#account();
    if (this.#socket.bufferedAmount === 0) {
      clearTimeout(this.#stall);
      this.#stall = undefined;
    } else {
      this.#stall?.refresh();
    }
    if (this.#waitingForRoom && this.hasRoom) {
      this.#waitingForRoom = false;
      this.#onRoom();
    }
  };

  // Close with a reason the client sees after what was already queued. ws destroys the
  // socket 30 s later if the client never reads that far.
  #drop(reason: string, detail: string): void {
    if (this.#closed) return;
    this.stop();
    this.#onSlow(reason, detail);
    this.#socket.close(slowConsumerCode, reason);
  }
}
