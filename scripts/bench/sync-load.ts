// B5's load: raw WebSocket clients in this one process, the same script against our
// sync service and Testground's Go service. Every wait is bounded.
import WebSocket from 'ws';

interface Frame {
  id: string;
  error: string;
  publish: { seq: number } | null;
  subscribe: string;
  signal_entry: { seq: number } | null;
}

/** One client: requests with ids, and handlers for the frames that answer them. */
class Client {
  #next = 0;
  readonly #handlers = new Map<string, (frame: Frame) => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.#handlers.get(frame.id)?.(frame);
    });
    socket.on('error', () => {});
  }

  static connect(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30_000 });
      socket.once('open', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  // Send a request; `onFrame` gets every frame that answers it.
  send(body: Record<string, unknown>, onFrame: (frame: Frame) => void): string {
    const id = String(this.#next++);
    this.#handlers.set(id, onFrame);
    this.socket.send(JSON.stringify({ id, ...body }));
    return id;
  }

  // Send a request and wait for its first answer.
  request(body: Record<string, unknown>): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const id = this.send(body, (frame) => {
        this.#handlers.delete(id);
        if (frame.error) reject(new Error(`${Object.keys(body)[0]}: ${frame.error}`));
        else resolve(frame);
      });
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

// Reject after `ms`, naming what did not finish.
function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

// Run `task(i)` for i in 0..n-1 with at most `limit` running at once.
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/** What one load run measured, in ms: wall times, and the service's CPU time when probed. */
export interface LoadResult {
  barrierMs: number;
  pubsubMs: number;
  barrierCpuMs: number;
  pubsubCpuMs: number;
}

export interface LoadSize {
  clients: number;
  publishers: number;
  subscribers: number;
  messagesPerPublisher: number;
}

// `clients` clients connect (at most 100 handshakes at once), each signals entry on
// one state and waits on a barrier for all of them; the time runs from the first
// connect to the last barrier's answer.
async function barrierLoad(url: string, prefix: string, clients: number): Promise<number> {
  const state = `${prefix}:states:ready`;
  const open: Client[] = [];
  const t0 = performance.now();
  try {
    const barriers: Promise<Frame>[] = [];
    const seqs = new Set<number>();
    await within('connect + signal_entry', 120_000, pool(clients, 100, async () => {
      const c = await Client.connect(url);
      open.push(c);
      const entry = await c.request({ signal_entry: { state } });
      seqs.add(entry.signal_entry!.seq);
      barriers.push(c.request({ barrier: { state, target: clients } }));
    }));
    await within('barrier', 120_000, Promise.all(barriers));
    const ms = performance.now() - t0;
    if (seqs.size !== clients) throw new Error(`signal_entry gave ${seqs.size} distinct numbers for ${clients} clients`);
    return ms;
  } finally {
    for (const c of open) c.close();
  }
}

// `subscribers` clients subscribe to one topic and `publishers` clients publish
// `messagesPerPublisher` messages each (up to 64 unanswered at a time per publisher);
// the time runs until every subscriber holds every message and every publish is answered.
async function pubsubLoad(url: string, prefix: string, size: LoadSize): Promise<number> {
  const topic = `${prefix}:topics:load`;
  const total = size.publishers * size.messagesPerPublisher;
  const subs = await Promise.all(Array.from({ length: size.subscribers }, () => Client.connect(url)));
  const pubs = await Promise.all(Array.from({ length: size.publishers }, () => Client.connect(url)));
  try {
    const t0 = performance.now();
    const received = subs.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          let n = 0;
          c.send({ subscribe: { topic } }, (frame) => {
            if (frame.error) return reject(new Error(`subscribe: ${frame.error}`));
            if (++n === total) resolve();
          });
        }),
    );
    const seqs = new Set<number>();
    const published = pubs.map(async (c, p) => {
      await pool(size.messagesPerPublisher, 64, async (i) => {
        const res = await c.request({ publish: { topic, payload: { from: p, i, body: 'x'.repeat(64) } } });
        seqs.add(res.publish!.seq);
      });
    });
    await within('pub/sub', 120_000, Promise.all([...published, ...received]));
    const ms = performance.now() - t0;
    if (seqs.size !== total) throw new Error(`publish gave ${seqs.size} distinct numbers for ${total} messages`);
    return ms;
  } finally {
    for (const c of [...subs, ...pubs]) c.close();
  }
}

// One run of the whole load against the service at `url`, with keys no earlier run used;
// `cpuMs` reads the service's CPU time so far.
export async function runLoad(url: string, size: LoadSize, runId: string, cpuMs: () => number = () => 0): Promise<LoadResult> {
  const prefix = `run:${runId}:plan:bench:case:load`;
  const c0 = cpuMs();
  const barrierMs = await barrierLoad(url, prefix, size.clients);
  const c1 = cpuMs();
  const pubsubMs = await pubsubLoad(url, prefix, size);
  const c2 = cpuMs();
  return { barrierMs, pubsubMs, barrierCpuMs: c1 - c0, pubsubCpuMs: c2 - c1 };
}
