// Find the first address of a server that answers `pong`, retrying the whole list.
import { TgError } from '../../helpers/shared/error.ts';
import { sleep } from './within.ts';

/** How long to keep trying, and how long each request and pause may take. */
export interface FindOptions {
  totalMs?: number;
  requestMs?: number;
  pauseMs?: number;
}

// Why one request failed, in a few words: `ECONNREFUSED`, `timed out after 3 s`, `HTTP 404 "..."`.
function reason(error: unknown, requestMs: number): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `timed out after ${requestMs / 1000} s`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message}: ${cause}` : String(e?.message ?? error);
}

// GET `<address>/ping` until one answers `pong`; the error names every address and why it failed.
export async function findServer(addresses: readonly string[], options: FindOptions = {}): Promise<string> {
  const { totalMs = 20_000, requestMs = 3_000, pauseMs = 1_000 } = options;
  const deadline = Date.now() + totalMs;
  const why = new Map<string, string>();
  let rounds = 0;
  for (;;) {
    rounds += 1;
    for (const address of addresses) {
      try {
        const res = await fetch(`${address}/ping`, { signal: AbortSignal.timeout(requestMs) });
        const body = await res.text();
        if (res.ok && body === 'pong') return address;
        why.set(address, `HTTP ${res.status} ${JSON.stringify(body.slice(0, 60))}`);
      } catch (error) {
        why.set(address, reason(error, requestMs));
      }
    }
    if (Date.now() + pauseMs >= deadline) break;
    await sleep(pauseMs);
  }
  const tried = addresses.map((a) => `${a} (${why.get(a) ?? 'not tried'})`).join(', ');
  throw new TgError('E_INSTANCE', `no server address answered pong in ${rounds} rounds over ${totalMs / 1000} s: ${tried}`);
}
