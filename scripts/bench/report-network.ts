// BENCHMARKS.md's parts on links shaped as networks: B4' (the real closure to one
// host against nix's two ways), B8 (one closure to many hosts, fan-out) and B9 (the
// host's substituters first): the method, where the time goes, and what is out of reach.
import type { B4pProfile, B4pSide, LinkRun } from './b4p-closure.ts';
import type { B8Profile, FleetRun } from './b8-fleet.ts';
import type { B9Profile, B9Run } from './b9-substitute.ts';
import { ratioOf, type Row } from './compare.ts';
import { LINK_BYTES_PER_S, relayRounds } from './network.ts';
import { shapeText } from './shaping.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

/** What the network benchmarks found. */
export interface NetworkFindings {
  b4p?: B4pProfile;
  b8?: B8Profile;
  b9?: B9Profile;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const s1 = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
// The time the link alone needs for `bytes` at its rate: no run can beat it.
const floorMs = (bytes: number): number => (bytes / LINK_BYTES_PER_S) * 1000;
const pct = (share: number | undefined): string => (share === undefined ? 'n/a' : `${Math.round(100 * share)}%`);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const distinct = (notes: string[]): string => [...new Set(notes)].join('; ');

/** Method bullets for B4', B8 and B9. */
export function networkMethod(f: NetworkFindings): string[] {
  const out: string[] = [];
  const shaped =
    "the host's link shaped with `scripts/lab shape` (a tbf at the rate on both ends of its veth pair; a delay runs the host's alias through Toxiproxy, so every side's SSH gets it)";
  if (f.b4p) {
    const p = f.b4p;
    out.push(
      `- **B4'** (${plural(p.runs.ours.length, 'pair')}): the app's closure (\`build.plan\`: node and the plan's bundle, ${mb(p.closure.bytes)} in ${plural(p.closure.paths, 'store path')}) to ${p.host}, ` +
        `${shaped}: \`${shapeText(p.link)}\`. Three sides in turn: \`nix copy --to ssh://${p.host}\`, \`nix-copy-closure --gzip --to ${p.host}\` (which runs its ssh with \`-C\`: zlib inside the SSH stream) ` +
        "and ours (ssh -G, an ssh2 connection, `copyClosure`, which chooses compression by its own measurement of the link). " +
        "The closure is deleted from the host's store (`nix-store --delete` inside the host) after every run. Per pair, the figure is ours over the faster of the other two. " +
        "The bytes on the link are the host's tbf counter (`tc -s qdisc`) across each run: the stream, SSH's and TCP/IP's framing, and anything else sent to the host.",
    );
  }
  if (f.b8) {
    const p = f.b8;
    const n = p.many[0]?.hosts ?? 0;
    out.push(
      `- **B8** (${plural(p.many.length, 'pair')}): the app and the agent (${mb(p.closure.bytes)} in ${plural(p.closure.paths, 'store path')}) placed on ${n} cold hosts at once through the product's multi-host path: ` +
        "one `Fleet` (`helpers/remote-runner/fleet.ts`) with a sync service in this process and the default copy limit (" +
        `${p.maxCopies} copies from here at a time), \`fleet.host()\` for every host at once, timed until all are ready (placed, sync service forwarded, agent started). ` +
        `Against the same on one host. Every host's link: \`${shapeText(p.link)}\`; this machine's uplink into the lab: \`scripts/lab uplink --rate ${p.uplink}\` (a tbf on the bridge's egress, which every copy from here shares and traffic between hosts does not cross). ` +
        "Each host's copy line says whether its copy came from here or was relayed by a host that held the closure (fan-out); the closure is deleted from every host after each run.",
    );
  }
  if (f.b9) {
    const p = f.b9;
    out.push(
      `- **B9** (${plural(p.none.length, 'pair')}): ${p.paths} store paths of ${mb(p.pathBytes)} of random data each (\`nix-store --add\` of \`head -c … /dev/urandom\`, deleted afterwards), all ${p.paths} the roots of one \`copyClosure\`, ` +
        `${p.cached} of them (half the bytes) in the lab's binary cache (\`scripts/lab cache add\`). Ours to ${p.hosts.substituter}, whose substituter is that cache (\`scripts/lab substituter ${p.hosts.substituter} file:///var/lib/remote-runner-lab/binary-cache\`), ` +
        `against ours to ${p.hosts.none}, which has none (as lab hosts start); both links \`${shapeText(p.link)}\`, so compression is chosen as on a network (random data does not compress). ` +
        "The figure is per pair: the bytes copyClosure sent from here with the substituter over those without; the medians in the table are the wall times.",
    );
  }
  return out;
}

/** The profile sections of B4', B8 and B9. */
export function networkSections(f: NetworkFindings): string[] {
  return [...(f.b4p ? b4pSection(f.b4p) : []), ...(f.b8 ? b8Section(f.b8) : []), ...(f.b9 ? b9Section(f.b9) : [])];
}

const SIDES: B4pSide[] = ['nix copy', 'nix-copy-closure --gzip', 'ours'];
const medianOf = (runs: LinkRun[], key: keyof LinkRun): number => median(runs.map((r) => r[key]));

function b4pSection(p: B4pProfile): string[] {
  const out = [
    `### B4': the real closure over \`${shapeText(p.link)}\``,
    '',
    `Medians of ${plural(p.runs.ours.length, 'run')} per side. The wire floor is the bytes on the link at 100 Mbit/s (${(LINK_BYTES_PER_S / 1e6).toFixed(1)} MB/s): no copy that sends them can be faster.`,
    '',
    '| side | time | bytes on the link | wire floor | time over the floor |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const side of SIDES) {
    const ms = medianOf(p.runs[side], 'ms');
    const wire = medianOf(p.runs[side], 'wireBytes');
    out.push(`| ${side} | ${fmtMs(ms)} | ${mb(wire)} | ${fmtMs(floorMs(wire))} | ${fmtMs(ms - floorMs(wire))} |`);
  }
  const sent = median(p.reports.map((r) => r.bytes));
  const oursWire = medianOf(p.runs.ours, 'wireBytes');
  const nixWire = medianOf(p.runs['nix copy'], 'wireBytes');
  const gzWire = medianOf(p.runs['nix-copy-closure --gzip'], 'wireBytes');
  const gzMs = medianOf(p.runs['nix-copy-closure --gzip'], 'ms');
  out.push(
    '',
    `- **Ours** sent ${mb(sent)} of the closure's ${mb(p.closure.bytes)} (${Math.round((100 * sent) / p.closure.bytes)}%), by its own count; how, by its copy's note: ${distinct(p.reports.map((r) => r.compression))}. ` +
      'Below 20 MB/s measured, the copy goes through `zstd -T0` here (level 6, or 9 below 8 MB/s) and `zstd -d` on the host without a trial. ' +
      `Its link also carried the measurement (two probes of 1 and 3 MB sent as they are) and SSH's framing: ${mb(oursWire - sent)} beyond the stream. ` +
      "The rest of its time over the floor is the round trips before the stream (ssh -G, connect, the host's store asked what it lacks, its substituters given their turn, zstd looked for, the probes), each 20 ms or more here, and the import's end.",
    `- **nix copy** sends the NAR stream as it is: ${mb(nixWire)} on the link, a floor of ${fmtMs(floorMs(nixWire))} at this rate whatever the CPU does.`,
    `- **nix-copy-closure --gzip** passes \`-C\` to its ssh, so OpenSSH compresses the stream with zlib (level 6), packet by packet, in the ssh client's one thread, and sshd inflates it: ${mb(gzWire)} on the link (${Math.round((100 * gzWire) / Math.max(nixWire, 1))}% of nix copy's). ` +
      (gzMs > 1.3 * floorMs(gzWire)
        ? `Its ${fmtMs(gzMs)} is well over that floor (${fmtMs(floorMs(gzWire))}): zlib in one thread, not the link, sets its pace here.`
        : `Its ${fmtMs(gzMs)} is close to that floor (${fmtMs(floorMs(gzWire))}): the link sets its pace.`),
    '',
  );
  return out;
}

// The run of `runs` whose time is nearest their median.
function typical(runs: FleetRun[]): FleetRun | undefined {
  const mid = median(runs.map((r) => r.ms));
  return [...runs].sort((a, b) => Math.abs(a.ms - mid) - Math.abs(b.ms - mid))[0];
}

function b8Section(p: B8Profile): string[] {
  const run = typical(p.many);
  const one = typical(p.one);
  if (!run || !one) return [];
  const rounds = relayRounds(run.copies);
  const out = [
    `### B8: one closure to ${run.hosts} hosts`,
    '',
    `The run of ${run.hosts} hosts nearest the median (${fmtMs(run.ms)}), host by host, in the order they were ready. "copy" is the time of the host's copy line, from asking the host what it lacks to the end of the import, waits for a copy slot or a free holder included. "MB" is what the line reports: the bytes sent for a copy from here (after zstd when it was used), the NARs' size for a relay (which passes the stream on in the form it arrived in):`,
    '',
    '| host | ready at | copy | from | MB | round |',
    '|---|---:|---:|---|---:|---:|',
  ];
  const byReady = [...run.copies].sort((a, b) => (run.readyMs[a.host] ?? 0) - (run.readyMs[b.host] ?? 0));
  for (const c of byReady) {
    out.push(`| ${c.host} | ${fmtMs(run.readyMs[c.host] ?? Number.NaN)} | ${c.s.toFixed(2)} s | ${c.from ?? 'this machine'} | ${c.mb.toFixed(1)} | ${rounds[c.host]} |`);
  }
  const all = p.many.flatMap((r) => r.copies);
  const relayed = all.filter((c) => c.from).length;
  const oneCopy = one.copies[0];
  const roundCount = Math.max(...Object.values(rounds));
  out.push(
    '',
    `Over ${plural(p.many.length, 'run')} of ${run.hosts} hosts: ${all.length - relayed} copies from this machine, ${relayed} relayed by a host that held the closure or was receiving it; ` +
      `in the run above ${run.copies.filter((c) => !c.from).length} from here and ${run.copies.filter((c) => c.from).length} relayed, a chain ${plural(roundCount, 'host')} long. ` +
      `This machine sent ${mb(run.uplinkBytes)} over its uplink in that run, ${fmtRatio(run.uplinkBytes / Math.max(one.uplinkBytes, 1))} times what it sent for one host (${mb(one.uplinkBytes)}), ` +
      `and its cores were ${pct(run.cpuBusy)} busy (one host: ${pct(one.cpuBusy)}).`,
    '',
    `- **One host** (${fmtMs(one.ms)}, the run nearest its median): ${oneCopy ? `${oneCopy.mb.toFixed(1)} MB in ${oneCopy.s.toFixed(2)} s, ${oneCopy.note}` : 'no copy line'}. ` +
      `The rest of its time is the connection, the sync service's forward and the agent's start.`,
    `- **Copies from here** run only while no host that holds (or is receiving) the closure is free to send it; at most ${p.maxCopies} at once, sharing the uplink's ${p.uplink}. ` +
      "A host counts as a source from the moment its own copy starts: it keeps the packed stream it receives in a spool, and the next host is fed from that spool as it arrives (docs/fan-out.md), " +
      `so hosts that ask together form a chain, and the uplink carries about one copy's bytes (${fmtRatio(run.uplinkBytes / Math.max(one.uplinkBytes, 1))} of one host's here).`,
    `- **Relays** go over the hosts' own links, which the uplink does not limit, in the form the stream arrived in (zstd when the first copy chose it). ` +
      `Each hop adds a round trip, the relay's key setup (an ssh connection from host to host) and the import's end; a host placed while every source is busy waits for one, or for a slot here.`,
    '',
  );
  return out;
}

const sentMB = (runs: B9Run[]): string => mb(median(runs.map((r) => r.report.bytes)));

function b9Section(p: B9Profile): string[] {
  const out = [
    `### B9: half the closure from the host's substituter`,
    '',
    '| pair | no substituter: time | sent from here | how | substituter: time | substituted | sent from here | how | bytes ratio |',
    '|---:|---:|---:|---|---:|---:|---:|---|---:|',
  ];
  p.none.forEach((n, i) => {
    const s = p.substituter[i];
    if (!s) return;
    out.push(
      `| ${i + 1} | ${fmtMs(n.ms)} | ${mb(n.report.bytes)} | ${n.report.compression} | ${fmtMs(s.ms)} | ${s.report.substituted} of ${s.report.closure} | ${mb(s.report.bytes)} | ${s.report.compression} | ${fmtRatio(s.report.bytes / n.report.bytes)} |`,
    );
  });
  const time = median(p.substituter.map((s) => s.ms)) / median(p.none.map((n) => n.ms));
  out.push(
    '',
    `With its substituter the host fetched ${median(p.substituter.map((s) => s.report.substituted))} of the ${p.paths} paths from the lab's cache itself (a \`file://\` cache the host reads from its own disk: none of those bytes crossed its link), ` +
      `and this machine sent the rest: ${sentMB(p.substituter)} against ${sentMB(p.none)} without a substituter (medians). ` +
      `The wall time went from ${fmtMs(median(p.none.map((n) => n.ms)))} to ${fmtMs(median(p.substituter.map((s) => s.ms)))} (${fmtRatio(time)} of it): ` +
      "the host asks its substituter first (`nix-store --realise` of the missing paths, bounded to 60 s), and then the copy sends what is still missing. " +
      'Random data does not compress, so when zstd is chosen (the link measures below 20 MB/s) it sends about as many bytes as the NARs hold, at the cost of some CPU; below 32 MB a copy goes as it is. ' +
      `Filling the cache (\`scripts/lab cache add\`, before the timed runs) took ${s1(p.cacheAddMs)}: Nix compresses each NAR with xz, slow on random data.`,
    '',
  );
  return out;
}

/** Why a missed goal of B4', B8 or B9 is missed, from the runs' records. */
export function networkGap(row: Row, f: NetworkFindings): string[] {
  if (row.id === "B4'" && f.b4p) return b4pGap(row, f.b4p);
  if (row.id === 'B8' && f.b8) return b8Gap(row, f.b8);
  if (row.id === 'B9' && f.b9) return [`The bytes sent from here came to ${fmtRatio(ratioOf(row))} of a full copy's (pairs: ${row.ratios.map(fmtRatio).join(', ')}); see B9's section above.`];
  return [];
}

function b4pGap(row: Row, p: B4pProfile): string[] {
  const ours = median(row.ours);
  const faster = median(row.baseline);
  const wire = medianOf(p.runs.ours, 'wireBytes');
  const target = faster * row.goal.value;
  return [
    `Ours takes ${fmtMs(ours)}, the faster of nix's two ${fmtMs(faster)}; the goal asks for ${fmtMs(target)}. The pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. ` +
      `Ours put ${mb(wire)} on the link, a floor of ${fmtMs(floorMs(wire))}, so ${fmtMs(ours - floorMs(wire))} of its time is not the stream: the round trips before it and the probes (see B4''s section). ` +
      (floorMs(wire) > target
        ? `The floor alone is over the goal: only fewer bytes would reach it (zstd's long-range mode for node's binary saves about 2% more; xz would save a third but packs at a few MB/s).`
        : `The floor is under the goal; what stands between is the fixed part: fewer round trips before the stream (skip the substituters' turn on a host that has none configured) and a cheaper probe.`),
  ];
}

function b8Gap(row: Row, p: B8Profile): string[] {
  const run = typical(p.many);
  const one = typical(p.one);
  if (!run || !one) return [];
  const here = run.copies.filter((c) => !c.from);
  const relays = run.copies.filter((c) => c.from);
  const rounds = Math.max(...Object.values(relayRounds(run.copies)));
  return [
    `${run.hosts} hosts take ${fmtMs(median(row.ours))} against ${fmtMs(median(row.baseline))} for one (pairs: ${row.ratios.map(fmtRatio).join(', ')}); the goal asks for ${fmtMs(2 * median(row.baseline))}. ` +
      `In the typical run ${plural(here.length, 'host')} got the copy from here (${here.map((c) => `${c.host} ${c.s.toFixed(1)} s`).join(', ')}) and ${relays.length} by relay (${relays.map((c) => `${c.host} from ${c.from} ${c.s.toFixed(1)} s`).join(', ') || 'none'}): the longest chain was ${plural(rounds, 'host')} long. ` +
      `Every hop of the chain runs its own sshd, zstd and nix-store processes, and all the hosts share the cores of this one machine: they were ${pct(run.cpuBusy)} busy during that run, against ${pct(one.cpuBusy)} while one host got its copy. ` +
      'The CPU, not the links, sets the pace here: on a cluster each host imports with its own CPU, and a hop costs a round trip and its relay key setup.',
  ];
}
