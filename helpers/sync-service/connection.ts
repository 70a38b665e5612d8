// One client's connection: requests in, responses out. Nothing a client sends can
// escape this handler; whatever goes wrong with a request is answered as an error.
import type { WebSocket } from 'ws';
import { TgError } from '../shared/error.ts';
import { goMarshal } from './go-json.ts';
import { maxMessageBytes } from './limits.ts';
import { Outbox, type OutboxLimits } from './outbox.ts';
import type { Log } from './limits.ts';

import { parseRequest, response, subscribeFrameBytes, type Operation, type Response } from './protocol.ts';
import type { Cursor, SyncState } from './state.ts';

/** Limits of one connection. */
export interface ConnectionLimits extends OutboxLimits {
  maxSubscriptions: number;
}


// Serve one WebSocket until it closes.
export function serveConnection(socket: WebSocket, state: SyncState, limits: ConnectionLimits, log: Log, peer: string): void {
  // Everything this connection waits on ends when it closes.
  const connection = new AbortController();
  const cancellable = new Map<string, AbortController>();
  const subscriptions = new Map<string, Cursor>();
  const outbox = new Outbox(socket, limits, pumpAll, (reason, detail) => {
    log('warn', `closing connection from ${peer}: ${reason} (${detail})`);
    connection.abort(new Error(reason));
  });
  const send = (res: Response) => outbox.send(JSON.stringify(res));

  socket.on('close', () => {
    outbox.stop();
    connection.abort(new Error('connection closed'));
  });
  socket.on('error', (error) => log('warn', `closing connection from ${peer}: ${error.message}`));

  socket.on('message', (data, isBinary) => {
    // A client being closed as a slow consumer gets nothing more done for it.
    if (connection.signal.aborted) return;
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
        const signal = track(id);
        let reached: Promise<void>;
        try {
          reached = state.barrier(op.state, op.target, signal);
        } catch (error) {
          cancellable.delete(id);
          throw error;
        }
        reached.then(
          () => {
            cancellable.delete(id);
            send(response(id));
          },
          () => cancellable.delete(id),
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
    const signal = track(id);
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
      send(response(id, { subscribe: json }));
    }
    return false;
  }

  function pumpAll(): void {
    for (const [id, cursor] of subscriptions) if (!pump(id, cursor)) return;
  }

  // A signal that ends when the connection closes or the client cancels `id`.
  function track(id: string): AbortSignal {
    const controller = new AbortController();
    cancellable.get(id)?.abort(new Error('replaced by a request with the same id'));
    cancellable.set(id, controller);
    return AbortSignal.any([connection.signal, controller.signal]);
  }
}
