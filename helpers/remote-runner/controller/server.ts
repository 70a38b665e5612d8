// The run's controller: a Unix socket that every instance's process of one run
// connects to (docs/controller.md). It ends when no instance has been connected
// for a while, or on SIGTERM; either way the hosts' agents stop first.
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseRunEnv } from '../../runenv/runenv.ts';
import { TgError } from '../../shared/error.ts';
import { serveInstance } from './instance.ts';
import { RunContext } from './run-context.ts';
import { eventFrame, helloSchema } from './wire.ts';

/** Options of serveRun. */
export interface ControllerOptions {
  socket: string;
  /** Exit after this long with no instance connected. */
  idleMs: number;
  /** Between TERM and KILL when an instance is stopped. */
  graceMs: number;
  log(line: string): void;
}

const HELLO_BOUND_MS = 30_000;
const MAX_LINE = 16 * 1024 * 1024;

// Serve instances until idle; resolves once everything is closed.
export async function serveRun(o: ControllerOptions): Promise<void> {
  let context: Promise<RunContext> | undefined;
  let active = 0;
  let idle: NodeJS.Timeout | undefined;
  let stopping = false;
  const sockets = new Set<Socket>();
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => void shutdown('idle'), o.idleMs);
  };
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(idle);
    o.log(`controller: stopping (${why})`);
    server.close();
    for (const socket of sockets) socket.destroy();
    if (context) await (await context.catch(() => undefined))?.close();
    await rm(o.socket, { force: true });
    finish();
  };
  const server = createServer((socket) => {
    active += 1;
    sockets.add(socket);
    clearTimeout(idle);
    void serve(socket)
      .catch((error: unknown) => o.log(`controller: ${(error as Error).stack ?? String(error)}`))
      .finally(() => {
        sockets.delete(socket);
        socket.end();
        active -= 1;
        if (active === 0 && !stopping) armIdle();
      });
  });

  const serve = async (socket: Socket) => {
    const lines = createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), HELLO_BOUND_MS).unref())]);
    if (!first || first.done || first.value.length > MAX_LINE) return;
    const tell = (message: string) => socket.write(eventFrame({ type: 'error', message }));
    let hello;
    let runenv;
    try {
      hello = helloSchema.parse(JSON.parse(first.value));
      runenv = parseRunEnv(hello.env);
    } catch (error) {
      tell(error instanceof TgError ? error.message : `invalid hello: ${(error as Error).message.split('\n')[0]}`);
      return;
    }
    context ??= RunContext.open(runenv);
    let ctx: RunContext;
    try {
      ctx = await context;
    } catch (error) {
      context = undefined;
      tell(`instance ${runenv.group}, connecting to the sync service: ${(error as Error).message}`);
      return;
    }
    if (ctx.run !== runenv.run) return tell(`this controller serves run ${ctx.run}, not ${runenv.run}`);
    const stop = new AbortController();
    let lost: Error | undefined;
    void ctx.sync.lost.then((error) => {
      lost = error;
      stop.abort();
    });
    socket.once('close', () => stop.abort());
    void (async () => {
      for (let next = await lines.next(); !next.done; next = await lines.next()) {
        if (next.value.includes('"term"')) stop.abort();
      }
    })().catch(() => {});
    await serveInstance(ctx, { socket, hello, runenv, stop: stop.signal, graceMs: o.graceMs, lost: () => lost });
  };

  server.listen(o.socket);
  await once(server, 'listening');
  o.log(`controller: serving on ${o.socket} (pid ${process.pid})`);
  armIdle();
  const onSignal = (signal: NodeJS.Signals) => void shutdown(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await finished;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
}
