// `server-client`: instance 1 serves HTTP, every other instance finds it and pings it.
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { intParam, jsonPath, stringParam } from '../../../helpers/runenv/index.ts';
import { TgError } from '../../../helpers/shared/error.ts';
import { rankAddresses, serverAddresses } from '../addresses.ts';
import type { CaseContext } from '../context.ts';
import { findServer } from '../find-server.ts';
import { startPingServer } from '../ping-server.ts';
import { within } from '../within.ts';

export const ENROLLED = 'enrolled';
export const CLIENT_DONE = 'client-done';
export const ADDRESSES_TOPIC = 'server-addresses';

const hostname = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** The message the server publishes on `server-addresses`. */
const addressesSchema = z.strictObject({
  addresses: z.array(z.string().regex(/^http:\/\/[^/\s]+:\d+$/, 'expected http://<host>:<port>')).min(1, 'expected at least one address'),
});

// The timeout_secs param: a positive number of seconds, default 120.
function timeoutMs(ctx: CaseContext): number {
  const secs = intParam(ctx.env, 'timeout_secs', 120);
  if (secs <= 0) throw new TgError('E_PARAM', `param timeout_secs: expected a positive number of seconds, got ${secs}`);
  return secs * 1000;
}

// The server_ip param: empty, an IPv4 address, or a host name.
function serverIp(ctx: CaseContext): string {
  const ip = stringParam(ctx.env, 'server_ip', '');
  if (ip !== '' && !isIPv4(ip) && !hostname.test(ip)) {
    throw new TgError('E_PARAM', `param server_ip: expected an IPv4 address or a host name, got ${JSON.stringify(ip)}`);
  }
  return ip;
}

// Serve, publish where, and wait until every client is done.
async function serve(ctx: CaseContext, ms: number, only: string): Promise<void> {
  const { env, runenv, client } = ctx;
  const server = await startPingServer();
  try {
    const addresses = serverAddresses(server.port, only);
    await client.publish(ADDRESSES_TOPIC, { addresses });
    await runenv.recordMessage(`server: listening on port ${server.port}, published ${addresses.join(' ')}`);
    const clients = env.instanceCount - 1;
    const them = `${clients} client${clients === 1 ? '' : 's'}`;
    if (clients > 0) {
      const barrier = await client.barrier(CLIENT_DONE, clients);
      try {
        await within(barrier.wait, ms, `server: waiting for ${them} on ${CLIENT_DONE}`);
      } finally {
        barrier.cancel();
      }
    }
    await runenv.recordMessage(`server: ${them} done`);
  } finally {
    await server.close();
  }
}

// Take the server's addresses from the topic, ping them in order, report the one that answered.
async function visit(ctx: CaseContext, ms: number): Promise<void> {
  const { runenv, client } = ctx;
  const sub = await client.subscribe(ADDRESSES_TOPIC);
  let first: IteratorResult<unknown>;
  try {
    first = await within(sub.wait.next(), ms, `client: waiting for the server on ${ADDRESSES_TOPIC}`);
  } finally {
    sub.cancel();
  }
  const parsed = addressesSchema.safeParse(first.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_SYNC', `client: the message on ${ADDRESSES_TOPIC} is invalid: ${jsonPath(issue.path) || '.'}: ${issue.message} (got ${JSON.stringify(first.value)})`);
  }
  // Keep trying for ~20 s, never longer than timeout_secs allows.
  const address = await findServer(rankAddresses(parsed.data.addresses), { totalMs: Math.min(20_000, ms) });
  await runenv.recordMessage(`client: ${address} answered pong`);
  await client.signalEntry(CLIENT_DONE);
}

// The first instance to enrol is the server; the others are its clients.
export async function serverClient(ctx: CaseContext): Promise<void> {
  const ms = timeoutMs(ctx);
  const only = serverIp(ctx);
  const seq = await ctx.client.signalEntry(ENROLLED);
  await (seq === 1 ? serve(ctx, ms, only) : visit(ctx, ms));
}
