// Who sends a closure to each host, with the transport replaced by one that
// records: this machine within its slots, holders one copy at a time each, and
// relays given up after two failures.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Needs } from '../../helpers/closure/copy.ts';
import { copyReport } from '../../helpers/closure/copy.ts';
import { Senders, type Route, type SendTarget, type Transport } from '../../helpers/remote-runner/senders.ts';

const needs = (): Needs => ({ closure: ['/nix/store/a'], missing: ['/nix/store/a'], substituted: 0, started: performance.now() });
const target = (alias: string, hostname = `10.0.0.${alias.slice(-1)}`): SendTarget =>
  ({ alias, key: 'job', system: 'x86_64-linux', mayHold: true, phase: () => {}, ssh: { target: { hostname } } }) as unknown as SendTarget;

// A transport whose copies take `ms` and whose relays fail when `relaysFail`.
function recording(ms: number, relaysFail = false) {
  const sent: string[] = [];
  const routes: Array<{ to: string; from: string } & Route> = [];
  const events: string[] = [];
  let busyHere = 0;
  let mostHere = 0;
  const transport: Transport = {
    copy: async (t, n, route) => {
      routes.push({ to: t.alias, from: 'here', ...route });
      mostHere = Math.max(mostHere, ++busyHere);
      await sleep(ms);
      busyHere -= 1;
      sent.push(`${t.alias} from here`);
      return copyReport(n, 1, 'uncompressed');
    },
    relay: async (source, t, n, route) => {
      routes.push({ to: t.alias, from: source.alias, ...route });
      events.push('relay starts');
      await sleep(ms);
      if (relaysFail) events.push('relay fails');
      if (relaysFail) throw new Error(`relay from ${source.alias} to ${t.alias}: connection timed out`);
      sent.push(`${t.alias} from ${source.alias}`);
      return copyReport(n, 1, `relayed from ${source.alias}`);
    },
  };
  return { transport, sent, routes, events, mostHere: () => mostHere };
}

// Place `hosts` through `senders`, `gapMs` apart.
async function placeAll(senders: Senders, hosts: SendTarget[], gapMs = 0): Promise<void> {
  await Promise.all(hosts.map(async (h, i) => {
    await sleep(i * gapMs);
    await senders.send(h, needs());
  }));
}

describe('senders', () => {
  it('sends from here at most maxCopies at once, and lets every host that holds the closure send it on', async () => {
    const t = recording(20);
    const log: string[] = [];
    const hosts = Array.from({ length: 8 }, (_, i) => target(`h${i + 1}`));
    await placeAll(new Senders({ maxCopies: 1, fanOut: true, log: (l) => log.push(l), transport: t.transport }), hosts);
    expect(t.sent).toHaveLength(8);
    expect(t.mostHere()).toBe(1);
    // Doubling: 8 hosts take far fewer rounds than 8 copies one after another.
    expect(t.sent.filter((s) => s.endsWith('from here')).length).toBeLessThanOrEqual(4);
    expect(log).toEqual([]);
  });

  it('chains hosts that arrive while a copy runs: each is fed from the spool of the one before, and only the first copy comes from here', async () => {
    const t = recording(200);
    const hosts = Array.from({ length: 8 }, (_, i) => target(`h${i + 1}`));
    await placeAll(new Senders({ maxCopies: 4, fanOut: true, log: () => {}, transport: t.transport }), hosts, 5);
    expect(t.routes.filter((r) => r.from === 'here').map((r) => r.to)).toEqual(['h1']);
    for (const [i, route] of t.routes.entries()) {
      expect(route.targetSpool).toMatch(/^\/tmp\/remote-runner-spool-[0-9a-f]{16}$/);
      if (i === 0) continue;
      // Fed from the spool of the host the stream reached just before.
      const source = t.routes.find((r) => r.to === route.from)!;
      expect(route.sourceSpool).toBe(source.targetSpool);
    }
    expect(new Set(t.routes.map((r) => r.from)).size).toBe(8);
  });

  it('feeds a later host from the store of one whose copy is done, and makes no spool when fan-out is off', async () => {
    const t = recording(5);
    const senders = new Senders({ maxCopies: 1, fanOut: true, log: () => {}, transport: t.transport });
    await senders.send(target('h1'), needs());
    await senders.send(target('h2'), { ...needs(), missing: ['/nix/store/a', '/nix/store/b'] });
    // h1's stream did not carry /nix/store/b: h2 is fed from h1's store.
    expect(t.routes[1]).toMatchObject({ to: 'h2', from: 'h1' });
    expect(t.routes[1]!.sourceSpool).toBeUndefined();
    const off = recording(5);
    await new Senders({ maxCopies: 1, fanOut: false, log: () => {}, transport: off.transport }).send(target('h1'), needs());
    expect(off.routes[0]!.targetSpool).toBeUndefined();
  });

  it('does not feed a host from one still receiving when its stream lacks a path that host needs', async () => {
    const t = recording(100);
    const senders = new Senders({ maxCopies: 4, fanOut: true, log: () => {}, transport: t.transport });
    const first = senders.send(target('h1'), needs());
    await sleep(10);
    await senders.send(target('h2'), { ...needs(), missing: ['/nix/store/a', '/nix/store/b'] });
    await first;
    // h1's stream carries only /nix/store/a, and h1 was still receiving it: h2 got its copy from here.
    expect(t.routes.map((r) => `${r.to} from ${r.from}`)).toEqual(['h1 from here', 'h2 from here']);
  });

  it('never relays when fan-out is off, or to a host reached through a loopback tunnel', async () => {
    const off = recording(5);
    await placeAll(new Senders({ maxCopies: 2, fanOut: false, log: () => {}, transport: off.transport }), [target('h1'), target('h2'), target('h3')]);
    expect(off.sent.every((s) => s.endsWith('from here'))).toBe(true);
    const tunnel = recording(5);
    await placeAll(new Senders({ maxCopies: 1, fanOut: true, log: () => {}, transport: tunnel.transport }), [target('h1'), target('h2', '127.0.0.1'), target('h3', '127.0.0.1')]);
    expect(tunnel.sent.filter((s) => s.endsWith('from here'))).toHaveLength(3);
  });

  it('falls back to this machine when a relay fails, and stops relaying after two failures', async () => {
    const t = recording(10, true);
    const log: string[] = [];
    await placeAll(new Senders({ maxCopies: 1, fanOut: true, log: (l) => log.push(l), transport: t.transport }), Array.from({ length: 6 }, (_, i) => target(`h${i + 1}`)));
    expect(t.sent).toHaveLength(6);
    expect(t.sent.every((s) => s.endsWith('from here'))).toBe(true);
    for (const line of log) expect(line).toMatch(/^h\d: relay from h\d to h\d: connection timed out; copying from this machine instead/);
    expect(log.filter((l) => l.endsWith('; hosts will not send to each other for the rest of the run'))).toHaveLength(1);
    // Relays already under way may still fail, but none starts after the second failure.
    const second = t.events.indexOf('relay fails', t.events.indexOf('relay fails') + 1);
    expect(second).toBeGreaterThan(0);
    expect(t.events.slice(second)).not.toContain('relay starts');
  });

  it('sends nothing to a host that lacks nothing', async () => {
    const t = recording(5);
    const report = await new Senders({ maxCopies: 1, fanOut: true, log: () => {}, transport: t.transport }).send(target('h1'), { ...needs(), missing: [] });
    expect(report.compression).toBe('nothing to send');
    expect(t.sent).toEqual([]);
  });
});
