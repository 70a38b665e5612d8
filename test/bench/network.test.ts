// The network benchmarks read the fleet's copy lines (who sent each host its
// closure), count relay rounds from them, and read a qdisc's byte count.
import { describe, expect, it } from 'vitest';
import { busyShare, copyLines, cpuTicks, parseCopyLine, qdiscSentBytes, relayRounds, type CopyLine } from '../../scripts/bench/network.ts';

const line = (host: string, from?: string): CopyLine => ({ host, paths: 3, mb: 102.8, s: 1, ...(from ? { from } : {}), note: '' });

describe('copy lines', () => {
  it('reads a copy from this machine with its compression note', () => {
    expect(parseCopyLine('lab-h1 (x86_64-linux): copy, 4 paths, 38.2 MB, in 3.71 s, of 4 in the closure, zstd -6 (link 11.9 MB/s)')).toEqual({
      host: 'lab-h1',
      paths: 4,
      mb: 38.2,
      s: 3.71,
      note: 'of 4 in the closure, zstd -6 (link 11.9 MB/s)',
    });
  });

  it('reads the source of a relayed copy, with or without the runner’s prefix', () => {
    const relayed = 'remote-runner: lab-h5 (x86_64-linux): copy, 3 paths, 102.8 MB, in 1.48 s, of 3 in the closure, relayed from lab-h1';
    expect(parseCopyLine(relayed)).toMatchObject({ host: 'lab-h5', mb: 102.8, s: 1.48, from: 'lab-h1' });
    expect(parseCopyLine(relayed.replace('remote-runner: ', ''))).toMatchObject({ host: 'lab-h5', from: 'lab-h1' });
  });

  it('reads the source of a copy streamed on as it arrived', () => {
    const streamed = 'lab-h3 (x86_64-linux): copy, 3 paths, 102.8 MB, in 4.02 s, of 3 in the closure, relayed from lab-h2, as it arrived there (zstd)';
    expect(parseCopyLine(streamed)).toMatchObject({ host: 'lab-h3', from: 'lab-h2' });
  });

  it('skips lines that are not copy lines', () => {
    const lines = [
      'lab-h3: relay from lab-h1 to lab-h3 exited 255: connect timed out; copying from this machine instead',
      'lab-h2 (x86_64-linux): build, in 4.00 s, built /nix/store/x on the host',
      'lab-h4 (x86_64-linux): copy, 3 paths, 102.8 MB, in 9.10 s, of 3 in the closure, uncompressed (small)',
    ];
    expect(copyLines(lines).map((c) => c.host)).toEqual(['lab-h4']);
  });
});

describe('relay rounds', () => {
  it('counts copies from this machine as round 1 and each relay one past its source', () => {
    const copies = [line('lab-h1'), line('lab-h2'), line('lab-h3', 'lab-h1'), line('lab-h4', 'lab-h3'), line('lab-h5', 'lab-h2')];
    expect(relayRounds(copies)).toEqual({ 'lab-h1': 1, 'lab-h2': 1, 'lab-h3': 2, 'lab-h4': 3, 'lab-h5': 2 });
  });

  it('reads relays in any order of their lines', () => {
    expect(relayRounds([line('lab-h3', 'lab-h2'), line('lab-h2', 'lab-h1'), line('lab-h1')])).toEqual({ 'lab-h1': 1, 'lab-h2': 2, 'lab-h3': 3 });
  });

  it('counts a source without a line of its own as a copy from this machine', () => {
    expect(relayRounds([line('lab-h2', 'lab-h9')])).toEqual({ 'lab-h2': 2 });
  });
});

describe('qdisc counts', () => {
  it('reads the bytes a tbf has sent', () => {
    const tc = 'qdisc tbf 8001: root refcnt 2 rate 100Mbit burst 50000b lat 50ms \n Sent 108734123 bytes 75321 pkt (dropped 0, overlimits 812 requeues 0) \n backlog 0b 0p requeues 0\n';
    expect(qdiscSentBytes(tc)).toBe(108_734_123);
  });

  it('refuses output without a count', () => {
    expect(() => qdiscSentBytes('Cannot find device "veth-lab-h9"')).toThrow(/no "Sent N bytes"/);
  });
});

describe('cpu counts', () => {
  it('reads busy and total ticks from /proc/stat, with idle and iowait not busy', () => {
    const before = cpuTicks('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n');
    expect(before).toEqual({ busy: 150, total: 1000 });
    const after = cpuTicks('cpu  250 0 100 850 50 0 0 0 0 0\n');
    expect(busyShare(before, after)).toBeCloseTo(200 / 250);
  });

  it('refuses text without a cpu line', () => {
    expect(() => cpuTicks('intr 1 2 3')).toThrow(/no "cpu" line/);
  });
});
