// Leases on a real sync service: an instance that leads a copy, or holds a copy
// slot, and dies, holds nobody up for longer than the lease.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withCopySlot } from '../../helpers/closure/copy-slots.ts';
import { oncePerRun } from '../../helpers/closure/once-per-run.ts';
import { SyncClient, runKeys, startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';

const LEASE = 2_000;
let sync: SyncService;
const scope = () => ({ run: `lease${Date.now()}${Math.random().toString(36).slice(2, 8)}`, plan: 'p', testCase: 'c' });
const connect = () => SyncClient.connect(sync.url, { signal: AbortSignal.timeout(5_000) });

beforeAll(async () => {
  sync = await startSyncService({ host: '127.0.0.1', port: 0, log: () => {} });
});
afterAll(() => sync.close());

describe('leases over the sync service', { timeout: 30_000 }, () => {
  it('fails the waiters within the lease when the instance doing the work dies', async () => {
    const s = scope();
    const leader = await connect();
    // The leader enrols first and starts working, then its process dies mid-work.
    const leading = oncePerRun(leader, s, 'copy:h1', () => new Promise<never>(() => {}), { leaseMs: LEASE });
    await sleep(300);
    const waiter = await connect();
    const started = Date.now();
    const waiting = oncePerRun(waiter, s, 'copy:h1', async () => 'never', { leaseMs: LEASE });
    await sleep(500);
    leader.close();
    void leading.catch(() => {});
    await expect(waiting).rejects.toThrow(/copy:h1: the instance doing it for this run has not been heard of for 2 s/);
    expect(Date.now() - started).toBeLessThan(LEASE + 3_000);
    waiter.close();
  });

  it('keeps the waiters waiting while the worker is alive, however long it takes', async () => {
    const s = scope();
    const leader = await connect();
    const leading = oncePerRun(leader, s, 'copy:h2', () => sleep(3 * LEASE, 'done'), { leaseMs: LEASE });
    await sleep(200);
    const waiter = await connect();
    await expect(oncePerRun(waiter, s, 'copy:h2', async () => 'never', { leaseMs: LEASE })).resolves.toEqual({ leader: false, value: 'done' });
    await expect(leading).resolves.toEqual({ leader: true, value: 'done' });
    leader.close();
    waiter.close();
  });

  it('gives a copy slot to the next ticket within the lease when its holder dies', async () => {
    const s = scope();
    const holder = await connect();
    // Ticket 1 of a single slot, held forever by an instance that then dies.
    void withCopySlot(holder, s, 1, () => new Promise<never>(() => {}), { leaseMs: LEASE }).catch(() => {});
    await sleep(300);
    const next = await connect();
    const started = Date.now();
    const got = withCopySlot(next, s, 1, async () => Date.now(), { leaseMs: LEASE });
    await sleep(500);
    holder.close();
    const at = await got;
    expect(at - started).toBeGreaterThan(LEASE - 500);
    expect(at - started).toBeLessThan(LEASE + 3_000);
    next.close();
  });

  it('holds the next ticket back while the slot’s holder is alive', async () => {
    const s = scope();
    const holder = await connect();
    const order: string[] = [];
    const held = withCopySlot(holder, s, 1, async () => {
      order.push('first starts');
      await sleep(2 * LEASE);
      order.push('first ends');
    }, { leaseMs: LEASE });
    await sleep(200);
    const next = await connect();
    await withCopySlot(next, s, 1, async () => void order.push('second starts'), { leaseMs: LEASE });
    await held;
    expect(order).toEqual(['first starts', 'first ends', 'second starts']);
    expect((await next.signalEntry(runKeys(s).state('copy-slots:ticket')))).toBe(3);
    holder.close();
    next.close();
  });
});
