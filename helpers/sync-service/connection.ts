// One client's connection: requests in, responses out. Nothing a client sends can
// escape this handler; whatever goes wrong with a request is answered as an error.
import type { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { TgError } from '../shared/error.ts';
import { goMarshal } from './go-json.ts';
import { maxMessageBytes } from './limits.ts';
import { Outbox, type OutboxLimits, type SharedWrites } from './outbox.ts';
import type { Log } from './limits.ts';

import { parseRequest, response, subscribeFrame, subscribeFrameBytes, type Operation, type Response } from './protocol.ts';
import type { Cursor, SyncState } from './state.ts';

/** Limits of one connection. */
export interface ConnectionLimits extends OutboxLimits {
  maxSubscriptions: number;
}


// Serve one WebSocket until it closes; `raw` is its TCP socket, whose writes the shared batch holds for one turn.
export function serveConnection(
  socket: WebSocket,
  raw: Writable,
  shared: SharedWrites,
  state: SyncState,
  limits: ConnectionLimits,
  log: Log,
  peer: string,
): void {
  // What this connection still waits on, by request id; all of it ends when the connection
  // does. (One controller per request: AbortSignal.any costs tens of µs a call in node 20.)
  const cancellable = new Map<string, AbortController>();
  const subscriptions = new Map<string, Cursor>();
  let ended = false;
  const end = (reason: Error) => {
    if (ended) return;
    ended = true;
    for (const controller of cancellable.values()) controller.abort(reason);
    cancellable.clear();
  };
  const outbox = new Outbox(socket, raw, shared, limits, pumpAll, (reason, detail) => {
    log('warn', `closing connection from ${peer}: ${reason} (${detail})`);
    end(new Error(reason));
  });
  const send = (res: Response) => outbox.send(JSON.stringify(res));

  socket.on('close', () => {
    outbox.stop();
    end(new Error('connection closed'));
  });
  socket.on('error', (error) => log('warn', `closing connection from ${peer}: ${error.message}`));

  socket.on('message', (data, isBinary) => {
    // A client being closed as a slow consumer gets nothing more done for it.
    if (ended) return;
    if (isBinary) {
      log('warn', `closing connection from ${peer}: binary frame (the protocol is JSON text)`);
      socket.close(1003, 'binary frames are not supported');
      return;
    }
    let id = '';
    try {
      // ws hands text messages over as one Buffer (binaryType 'nodebuffer', the default).
      const buffer = data as Buffer;
      const req = parseRequest(buffer.toString(), buffer.length);
      id = req.id;
      if (!req.ok) {
        log('warn', `rejected request ${JSON.stringify(id.slice(0, 100))} from ${peer}: ${req.error}`);
        send(response(id, { error: req.error }));
        return;
      }
      handle(req.id, req.op);
    } catch (error) {
      const message = error instanceof TgError ? error.message : `internal error: ${String(error)}`;
      log('warn', `failed request ${JSON.stringify(id.slice(0, 100))} from ${peer}: ${message}`);
      send(response(id, { error: message }));
    }
  });

  function handle(id: string, op: Operation): void {
    switch (op.kind) {
      case 'cancel': {
        cancellable.get(id)?.abort(new Error('cancelled'));
        cancellable.delete(id);
        return;
      }
      case 'publish': {
        const json = goMarshal(op.payload);
        const bytes = subscribeFrameBytes(json);
        if (bytes > maxMessageBytes) {
          throw new TgError(
            'E_SYNC',
            `publish: the payload would reach subscribers as a ${bytes}-byte message, over the limit of ${maxMessageBytes} bytes per message that Testground's SDKs read (Go's encoding escapes <, > and &); nothing was stored`,
          );
        }
        send(response(id, { publish: { seq: state.publishJson(op.topic, json) } }));
        return;
      }
      case 'signal_entry':
        send(response(id, { signal_entry: { seq: state.signalEntry(op.state) } }));
        return;
      case 'subscribe':
        subscribe(id, op.topic);
        return;
      case 'barrier': {
        const controller = track(id);
        let reached: Promise<void>;
        try {
          reached = state.barrier(op.state, op.target, controller.signal);
        } catch (error) {
          untrack(id, controller);
          throw error;
        }
        reached.then(
          () => {
            untrack(id, controller);
            send(response(id));
          },
          () => untrack(id, controller),
        );
        return;
      }
    }
  }

  function subscribe(id: string, topic: string): void {
    if (!subscriptions.has(id) && subscriptions.size >= limits.maxSubscriptions) {
      throw new TgError(
        'E_SYNC',
        `subscribe: this connection already holds ${subscriptions.size} subscriptions, the most it may (maxSubscriptions); cancel one first`,
      );
    }
    const { signal } = track(id);
    const cursor = state.follow(topic, () => pump(id, cursor), signal);
    subscriptions.set(id, cursor);
    signal.addEventListener('abort', () => subscriptions.get(id) === cursor && subscriptions.delete(id), { once: true });
    pump(id, cursor);
  }

  // Queue what `cursor` has while there is room; false once there is none.
  function pump(id: string, cursor: Cursor): boolean {
    while (outbox.hasRoom) {
      const json = cursor.take();
      if (json === undefined) return true;
      outbox.send(subscribeFrame(id, json));
    }
    return false;
  }

  function pumpAll(): void {
    for (const [id, cursor] of subscriptions) if (!pump(id, cursor)) return;
  }

  // A controller that aborts when the connection ends or the client cancels `id`.
  function track(id: string): AbortController {
    const controller = new AbortController();
    if (ended) controller.abort(new Error('connection closed'));
    cancellable.get(id)?.abort(new Error('replaced by a request with the same id'));
    cancellable.set(id, controller);
    return controller;
  }

  // `id` is done; a newer request that took over its id stays tracked.
  function untrack(id: string, controller: AbortController): void {
    if (cancellable.get(id) === controller) cancellable.delete(id);
  }
}
