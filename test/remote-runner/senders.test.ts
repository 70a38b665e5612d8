// Who sends a closure to each host, with the transport replaced by one that
// records: this machine within its slots, holders one copy at a time each, and
// relays given up after two failures.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Needs } from '../../helpers/closure/copy.ts';
import { copyReport } from '../../helpers/closure/copy.ts';
import { Senders, type SendTarget, type Transport } from '../../helpers/remote-runner/senders.ts';

const needs = (): Needs => ({ closure: ['/nix/store/a'], missing: ['/nix/store/a'], substituted: 0, started: performance.now() });
const target = (alias: string, hostname = `10.0.0.${alias.slice(-1)}`): SendTarget =>
  ({ alias, key: 'job', system: 'x86_64-linux', phase: () => {}, ssh: { target: { hostname } } }) as unknown as SendTarget;

// A transport whose copies take `ms` and whose relays fail when `relaysFail`.
function recording(ms: number, relaysFail = false) {
  const sent: string[] = [];
  const events: string[] = [];
  let busyHere = 0;
  let mostHere = 0;
  const transport: Transport = {
    copy: async (t, n) => {
      mostHere = Math.max(mostHere, ++busyHere);
      await sleep(ms);
      busyHere -= 1;
      sent.push(`${t.alias} from here`);
      return copyReport(n, 1, 'uncompressed');
    },
    relay: async (source, t, n) => {
      events.push('relay starts');
      await sleep(ms);
      if (relaysFail) events.push('relay fails');
      if (relaysFail) throw new Error(`relay from ${source.alias} to ${t.alias}: connection timed out`);
      sent.push(`${t.alias} from ${source.alias}`);
      return copyReport(n, 1, `relayed from ${source.alias}`);
    },
  };
  return { transport, sent, events, mostHere: () => mostHere };
}

// Place `hosts` through `senders` the way the fleet does: send, then hold.
async function placeAll(senders: Senders, hosts: SendTarget[]): Promise<void> {
  await Promise.all(hosts.map(async (h) => {
    await senders.send(h, needs());
    senders.holds(h, h.key);
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
