// A WebSocket server speaking Testground's sync-service protocol over SyncState.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { TgError } from '../shared/error.ts';
import { parseRequest, response, type Response } from './protocol.ts';
import { SyncState, type GcOptions } from './state.ts';

/** Options of startSyncService. */
export interface SyncServiceOptions {
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 5050. */
  port?: number;
  /** Idle collection of topics and barriers. */
  gc?: GcOptions;
  /** Where diagnostics go. Default: warnings to stderr. */
  log?: (level: 'info' | 'warn', message: string) => void;
}

/** A running sync service. */
export interface SyncService {
  url: string;
  host: string;
  port: number;
  state: SyncState;
  close(): Promise<void>;
}

// Frames above this size close the connection (Go's service allows far less).
const maxFrameBytes = 64 * 1024 * 1024;

const defaultLog = (level: 'info' | 'warn', message: string) => {
  if (level === 'warn') process.stderr.write(`sync-service: ${message}\n`);
};

// Start a sync service; resolves once it listens.
export async function startSyncService(options: SyncServiceOptions = {}): Promise<SyncService> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? defaultLog;
  const state = new SyncState(options.gc);
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('this is a Testground sync service: connect with a WebSocket\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: maxFrameBytes });
  wss.on('connection', (socket, req) => serveConnection(socket, state, log, `${req.socket.remoteAddress}:${req.socket.remotePort}`));
  wss.on('error', (error) => log('warn', `websocket server error: ${error.message}`));

  await new Promise<void>((resolve, reject) => {
    http.once('error', (error) =>
      reject(new TgError('E_SYNC', `sync-service: cannot listen on ${host}:${options.port ?? 5050}: ${error.message}`, { cause: error })),
    );
    http.listen(options.port ?? 5050, host, resolve);
  });
  const port = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `ws://${shownHost}:${port}`,
    host,
    port,
    state,
    close() {
      closing ??= new Promise<void>((resolve) => {
        state.close();
        for (const client of wss.clients) client.terminate();
        wss.close(() => http.close(() => resolve()));
        http.closeAllConnections();
      });
      return closing;
    },
  };
}

function serveConnection(socket: WebSocket, state: SyncState, log: NonNullable<SyncServiceOptions['log']>, peer: string): void {
  // Everything this connection waits on ends when it closes.
  const connection = new AbortController();
  const cancellable = new Map<string, AbortController>();

  const send = (res: Response) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(res));
  };

  socket.on('close', () => connection.abort(new Error('connection closed')));
  socket.on('error', (error) => log('warn', `closing connection from ${peer}: ${error.message}`));

  socket.on('message', (data, isBinary) => {
    if (isBinary) {
      log('warn', `closing connection from ${peer}: binary frame (the protocol is JSON text)`);
      socket.close(1003, 'binary frames are not supported');
      return;
    }
    const req = parseRequest(data.toString());
    if (!req.ok) {
      log('warn', `rejected request from ${peer}: ${req.error}`);
      send(response(req.id, { error: req.error }));
      return;
    }
    const { id, op } = req;
    switch (op.kind) {
      case 'cancel': {
        cancellable.get(id)?.abort(new Error('cancelled'));
        cancellable.delete(id);
        return;
      }
      case 'publish':
        send(response(id, { publish: { seq: state.publish(op.topic, op.payload) } }));
        return;
      case 'signal_entry':
        send(response(id, { signal_entry: { seq: state.signalEntry(op.state) } }));
        return;
      case 'subscribe': {
        state.subscribe(op.topic, (json) => send(response(id, { subscribe: json })), track(id));
        return;
      }
      case 'barrier': {
        state.barrier(op.state, op.target, track(id)).then(
          () => {
            cancellable.delete(id);
            send(response(id));
          },
          () => cancellable.delete(id),
        );
        return;
      }
    }
  });

  // A signal that ends when the connection closes or the client cancels `id`.
  function track(id: string): AbortSignal {
    const controller = new AbortController();
    cancellable.get(id)?.abort(new Error('replaced by a request with the same id'));
    cancellable.set(id, controller);
    return AbortSignal.any([connection.signal, controller.signal]);
  }
}
