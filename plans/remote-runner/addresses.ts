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

function ipv4(ip: string): number {
  return ip.split('.').reduce((n, octet) => (n << 8) + Number(octet), 0) >>> 0;
}

// Order published addresses for this client: loopback first when the server runs on
// this very machine, then addresses on one of this machine's subnets, then the rest.
// A client thus never leaves its machine or its subnet when it need not.
export function rankAddresses(addresses: readonly string[]): string[] {
  const own = Object.values(networkInterfaces())
    .flatMap((infos) => infos ?? [])
    .filter((info) => info.family === 'IPv4');
  const hostOf = (url: string) => new URL(url).hostname;
  const sameMachine = addresses.some((a) => own.some((o) => !o.internal && o.address === hostOf(a)));
  const rank = (url: string): number => {
    const host = hostOf(url);
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(host)) return 2;
    if (host.startsWith('127.')) return sameMachine ? 0 : 3;
    const onSubnet = own.some((o) => !o.internal && (ipv4(o.address) & ipv4(o.netmask)) === (ipv4(host) & ipv4(o.netmask)));
    return onSubnet ? 1 : 2;
  };
  return addresses.map((a, i) => ({ a, i, r: rank(a) })).sort((x, y) => x.r - y.r || x.i - y.i).map((x) => x.a);
}
