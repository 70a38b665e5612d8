// A WebSocket server speaking Testground's sync-service protocol over SyncState.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { TgError } from '../shared/error.ts';
import { serveConnection } from './connection.ts';
import type { Log } from './limits.ts';
import { batchBytes, defaults, hardFrameBytes, sharedQueueBytes } from './limits.ts';
import { SendBudget, WriteBatch } from './outbox.ts';
import { SyncState, type GcOptions } from './state.ts';

/** Options of startSyncService. */
export interface SyncServiceOptions {
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 5050. */
  port?: number;
  /** Idle collection of topics. Counters (signal_entry and barrier counts) are never collected. */
  gc?: GcOptions;
  /** Most distinct states (signal_entry and barrier names) the service keeps; a request for a new one past it gets an error. Default 100,000. */
  maxStates?: number;
  /** Most live subscriptions on one connection; one more is refused with an error. Default 1,000. */
  maxSubscriptions?: number;
  /**
   * Most bytes queued for one connection and not yet taken by its client. Subscription
   * messages are only queued while less than half of it is (the rest wait in their topic);
   * a connection whose queue would pass it is closed with 1008. Default 4 MiB.
   */
  maxQueuedBytes?: number;
  /** A connection with bytes queued and no write progress for this long is closed with 1008. Default 10 s, the Go service's write timeout. */
  stallTimeoutMs?: number;
  /** Where diagnostics go. Default: warnings to stderr. */
  log?: Log;
}

/** A running sync service. */
export interface SyncService {
  url: string;
  host: string;
  port: number;
  state: SyncState;
  close(): Promise<void>;
}

const defaultLog: Log = (level, message) => {
  if (level === 'warn') process.stderr.write(`sync-service: ${message}\n`);
};

// Start a sync service; resolves once it listens.
export async function startSyncService(options: SyncServiceOptions = {}): Promise<SyncService> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? defaultLog;
  const state = new SyncState({ gc: options.gc, maxStates: options.maxStates });
  const limits = {
    maxSubscriptions: options.maxSubscriptions ?? defaults.maxSubscriptions,
    maxQueuedBytes: options.maxQueuedBytes ?? defaults.maxQueuedBytes,
    stallTimeoutMs: options.stallTimeoutMs ?? defaults.stallTimeoutMs,
  };
  const http = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('this is a Testground sync service: connect with a WebSocket\n');
  });
  // Messages over maxMessageBytes are read and answered with an error; only far larger
  // frames close the connection, so that no client can make us buffer much.
  const wss = new WebSocketServer({ server: http, maxPayload: hardFrameBytes });
  const shared = { batch: new WriteBatch(batchBytes), budget: new SendBudget(sharedQueueBytes) };
  wss.on('connection', (socket, req) =>
    serveConnection(socket, req.socket, shared, state, limits, log, `${req.socket.remoteAddress}:${req.socket.remotePort}`),
  );
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
