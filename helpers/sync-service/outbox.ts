// What one connection has queued to write, kept bounded. Subscription messages are
// only queued while there is room (they wait in their topic otherwise), and a client
// that stops reading is closed instead of being buffered for without end.
import type { WebSocket } from 'ws';

/** Limits of one connection's queue. */
export interface OutboxLimits {
  maxQueuedBytes: number;
  stallTimeoutMs: number;
}

/** The close code a slow consumer sees: 1008, policy violation. */
export const slowConsumerCode = 1008;

// One connection's bounded send queue, with the stall watch that closes a client that stopped reading.
export class Outbox {
  readonly #socket: WebSocket;
  readonly #limits: OutboxLimits;
  readonly #onRoom: () => void;
  readonly #onSlow: (reason: string, detail: string) => void;
  #waitingForRoom = false;
  #stall: NodeJS.Timeout | undefined;
  #closed = false;

  // `onRoom` runs when room opens again after `hasRoom` said no; `onSlow` once, when the client is dropped.
  constructor(socket: WebSocket, limits: OutboxLimits, onRoom: () => void, onSlow: (reason: string, detail: string) => void) {
    this.#socket = socket;
    this.#limits = limits;
    this.#onRoom = onRoom;
    this.#onSlow = onSlow;
  }

  // Whether a subscription message may be queued now: half the queue is kept for replies.
  get hasRoom(): boolean {
    const room = !this.#closed && this.#socket.readyState === this.#socket.OPEN && this.#socket.bufferedAmount < this.#limits.maxQueuedBytes / 2;
    if (!room) this.#waitingForRoom = true;
    return room;
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
    this.#socket.send(text, () => this.#progress());
    if (this.#socket.bufferedAmount > 0 && !this.#stall) {
      this.#stall = setTimeout(() => {
        this.#drop('slow consumer: nothing read', `no write progress for ${this.#limits.stallTimeoutMs} ms with ${this.#socket.bufferedAmount} bytes queued`);
      }, this.#limits.stallTimeoutMs);
      this.#stall.unref();
    }
  }

  // Stop for good, without closing the socket: the connection is going away.
  stop(): void {
    this.#closed = true;
    clearTimeout(this.#stall);
    this.#stall = undefined;
  }

  // A write reached the kernel: the client is reading, at least a little.
  #progress(): void {
    if (this.#closed) return;
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
  }

  // Close with a reason the client sees after what was already queued. ws destroys the
  // socket 30 s later if the client never reads that far.
  #drop(reason: string, detail: string): void {
    if (this.#closed) return;
    this.stop();
    this.#onSlow(reason, detail);
    this.#socket.close(slowConsumerCode, reason);
  }
}
