// The network benchmarks' pure parts (B4', B8, B9): the fleet's copy lines, who
// sent each host its closure and in which round, and a qdisc's byte count.

/** The rate a shaped link carries, in bytes a second: 100 Mbit/s. */
export const LINK_BYTES_PER_S = 100e6 / 8;

/** One host's copy, from the fleet's line. */
export interface CopyLine {
  host: string;
  paths: number;
  mb: number;
  s: number;
  /** The host that relayed the closure, or undefined when it came from this machine. */
  from?: string;
  /** The rest of the line: "of 3 in the closure, zstd -6 (link 11.9 MB/s)", "…, relayed from lab-h1, as it arrived there (zstd)". */
  note: string;
}

// A fleet's copy line: "lab-h2 (x86_64-linux): copy, 3 paths, 102.8 MB, in 1.48 s, of 3 in the closure, relayed from lab-h1";
// tg-run and the controller print it after "remote-runner: ". Lines of a copy with nothing to send say "0 paths".
export function parseCopyLine(line: string): CopyLine | undefined {
  const m = /^(?:remote-runner: )?(\S+) \([^)]*\): copy, (\d+) paths, ([\d.]+) MB, in ([\d.]+) s, (.*)$/.exec(line.trim());
  if (!m) return undefined;
  const from = /relayed from ([^\s,]+)/.exec(m[5]!)?.[1];
  return { host: m[1]!, paths: Number(m[2]), mb: Number(m[3]), s: Number(m[4]), ...(from ? { from } : {}), note: m[5]! };
}

export const copyLines = (lines: string[]): CopyLine[] => lines.map(parseCopyLine).filter((c): c is CopyLine => c !== undefined);

// The round in which each host got its copy: 1 from this machine, n + 1 from a host
// that got its own in round n. A host whose source has no line of its own counts as
// one round past a copy from here.
export function relayRounds(copies: CopyLine[]): Record<string, number> {
  const source = new Map(copies.map((c) => [c.host, c.from]));
  const roundOf = (host: string, seen: Set<string>): number => {
    const from = source.get(host);
    // A cycle cannot happen (a host relays only what it holds); stop on one all the same.
    return from === undefined || seen.has(from) ? 1 : roundOf(from, new Set([...seen, from])) + 1;
  };
  return Object.fromEntries(copies.map((c) => [c.host, roundOf(c.host, new Set([c.host]))]));
}

// The bytes a qdisc has sent, from `tc -s qdisc show dev <dev> root`: " Sent 1234 bytes 56 pkt (…)".
export function qdiscSentBytes(tcOutput: string): number {
  const m = /^\s*Sent (\d+) bytes/m.exec(tcOutput);
  if (!m) throw new Error(`no "Sent N bytes" in tc's output: ${tcOutput.trim().split('\n')[0] ?? '(empty)'}`);
  return Number(m[1]);
}

/** The machine's CPU time so far, in clock ticks, from /proc/stat's "cpu" line. */
export interface CpuTicks {
  busy: number;
  total: number;
}

// "cpu  user nice system idle iowait irq softirq steal …": idle and iowait are not busy.
export function cpuTicks(procStat: string): CpuTicks {
  const fields = /^cpu\s+(.*)$/m.exec(procStat)?.[1]?.trim().split(/\s+/).map(Number);
  if (!fields || fields.length < 5 || fields.some((n) => !Number.isFinite(n))) throw new Error(`no "cpu" line in /proc/stat: ${procStat.split('\n')[0] ?? ''}`);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** How busy every core of the machine was between two readings (0 to 1). */
export const busyShare = (before: CpuTicks, after: CpuTicks): number => (after.busy - before.busy) / Math.max(after.total - before.total, 1);
