// A sync-service client that speaks raw WebSocket frames, for protocol-level tests.
import WebSocket from 'ws';

export interface Frame {
  id: string;
  error: string;
  publish: { seq: number } | null;
  subscribe: string;
  signal_entry: { seq: number } | null;
}

export class RawClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  /** Bytes of the largest frame received so far. */
  largest = 0;
  #waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.largest = Math.max(this.largest, (data as Buffer).length);
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.#wake();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async connect(url: string): Promise<RawClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  // Frames received so far for one request id.
  framesFor(id: string): Frame[] {
    return this.frames.filter((f) => f.id === id);
  }

  // Wait until `done` holds, or fail after `ms`.
  async until(done: () => boolean, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`condition not met within ${ms} ms; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  // Send a request and wait for its first response.
  async request(frame: { id: string } & Record<string, unknown>, ms = 5_000): Promise<Frame> {
    this.send(frame);
    await this.until(() => this.framesFor(frame.id).length > 0, ms);
    return this.framesFor(frame.id)[0]!;
  }

  close(): void {
    this.socket.terminate();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
