// The addresses a server publishes: every non-internal IPv4 address, then loopback.
import { networkInterfaces } from 'node:os';

// Base URLs (`http://<ip>:<port>`) clients may reach the server on; `only` replaces the list.
export function serverAddresses(port: number, only = ''): string[] {
  if (only !== '') return [`http://${only}:${port}`];
  const ips = Object.values(networkInterfaces())
    .flatMap((infos) => infos ?? [])
    .filter((info) => info.family === 'IPv4' && !info.internal)
    .map((info) => info.address);
  return [...new Set([...ips, '127.0.0.1'])].map((ip) => `http://${ip}:${port}`);
}
