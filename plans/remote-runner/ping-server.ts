// A tiny HTTP server answering `pong` on GET /ping, on every IPv4 address.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TgError } from '../../helpers/shared/error.ts';

/** A listening ping server. */
export interface PingServer {
  port: number;
  close(): Promise<void>;
}

// Listen on 0.0.0.0 and a free port; resolves once it listens.
export async function startPingServer(): Promise<PingServer> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/ping') res.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /ping\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new TgError('E_INSTANCE', `ping server: cannot listen on 0.0.0.0: ${error.message}`, { cause: error })));
    server.listen(0, '0.0.0.0', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
