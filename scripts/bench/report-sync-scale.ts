// BENCHMARKS.md's parts on B5': the services at 10,000 clients, phase by phase.
import { runMs, scalePhases, type ScalePhaseName, type ScaleProfile, type ScaleRun } from './b5-sync-scale.ts';
import type { Row } from './compare.ts';
import type { Machine } from './machine.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (kib: number): string => `${Math.round(kib / 1024)} MiB`;
const phaseLabel: Record<ScalePhaseName, string> = { connect: 'connect', signal_entry: 'signal_entry', barrier: 'barrier', pubsub: 'pub/sub' };

// Both sides' medians of `value` over B5''s runs, and the median of the per-pair ratios ours / Go.
function scaleStats(p: ScaleProfile, value: (r: ScaleRun) => number): { go: number; ours: number; ratio: number } {
  const n = Math.min(p.go.length, p.ours.length);
  const go = p.go.slice(0, n).map(value);
  const ours = p.ours.slice(0, n).map(value);
  return { go: median(go), ours: median(ours), ratio: median(ours.map((x, i) => x / go[i]!)) };
}

// CPU time over wall time: how many cores a process kept busy on average.
const cores = (cpuMs: number, ms: number): string => (cpuMs / ms).toFixed(2);
// Microseconds of CPU per unit of work.
const usPer = (cpuMs: number, n: number): number => (cpuMs * 1000) / Math.max(n, 1);

export function b5pMethod(p: ScaleProfile): string {
  const { clients, publishers, pubsubBoundMs } = p.size;
  const pairs = Math.min(p.go.length, p.ours.length);
  return (
    `- **B5'** (${pairs} pair${pairs === 1 ? '' : 's'}): the same two services at ${count(clients)} clients, each service a fresh process for every run (so ours compiles its code paths afresh in every run, as at a service's start), its open-file limit raised to the hard limit, ` +
    'driven by one load generator written in Go for both sides (`scripts/bench/sync-load-go`, gorilla/websocket, one goroutine per client). ' +
    `Four phases, each timed until its last client is through: connect (${p.dialParallel} handshakes in flight); \`signal_entry\` on one state, every client at once (the numbers handed out must be 1..${count(clients)}, each once); ` +
    `\`barrier\` for ${count(clients)}, which each client sends as soon as its entry is answered, timed from the last entry's answer to the last release; ` +
    `pub/sub: every client subscribes to one topic, ${count(publishers)} of them publish one small message each (\`{"from":i}\`), and every client reads every message, each sender once (${count(clients * publishers)} deliveries, bounded at ${pubsubBoundMs / 1000} s a run). ` +
    "The figure is the sum of the four phases. The service's CPU time and memory come from /proc at each phase's end, the generator's own CPU time from getrusage."
  );
}

export function b5pSection(p: ScaleProfile, machine: Machine): string[] {
  const { clients, publishers, pubsubBoundMs } = p.size;
  const runs = Math.min(p.go.length, p.ours.length);
  const stat = (name: ScalePhaseName, field: 'ms' | 'serverCpuMs' | 'loadCpuMs') => scaleStats(p, (r) => r.phases[name][field]);
  const out = [
    `### B5': the services at ${count(clients)} clients, phase by phase`,
    '',
    `Medians of ${runs} run${runs === 1 ? '' : 's'} per side; each ratio is the median of the per-pair ratios (ours / Go). ` +
      `CPU is the user + system time of the service's process in the phase, with the cores it kept busy on average (CPU / wall; the machine has ${machine.nproc}); ` +
      "the generator's CPU is its own, in the runs against each side.",
    '',
    '| phase | Go | ours | ratio | Go CPU (cores) | ours CPU (cores) | generator CPU, Go / ours |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const name of scalePhases) {
    const ms = stat(name, 'ms');
    const cpu = stat(name, 'serverCpuMs');
    const load = stat(name, 'loadCpuMs');
    out.push(
      `| ${phaseLabel[name]} | ${fmtMs(ms.go)} | ${fmtMs(ms.ours)} | ${fmtRatio(ms.ratio)} | ${fmtMs(cpu.go)} (${cores(cpu.go, ms.go)}) | ${fmtMs(cpu.ours)} (${cores(cpu.ours, ms.ours)}) | ${fmtMs(load.go)} / ${fmtMs(load.ours)} |`,
    );
  }
  const all = scaleStats(p, runMs);
  out.push(`| all phases | ${fmtMs(all.go)} | ${fmtMs(all.ours)} | **${fmtRatio(all.ratio)}** | | | |`, '');

  const connected = scaleStats(p, (r) => r.phases.connect.serverRssKiB);
  const peak = scaleStats(p, (r) => r.serverPeakRssKiB);
  out.push(
    `Memory of the service (medians): resident after connect, with ${count(clients)} connections open, ${mib(connected.go)} for Go's and ${mib(connected.ours)} for ours; ` +
      `the peak over the run (VmHWM) ${mib(peak.go)} and ${mib(peak.ours)}.`,
    '',
  );

  const rate = scaleStats(p, (r) => r.pubsub.delivered / (r.phases.pubsub.ms / 1000));
  const perDelivery = scaleStats(p, (r) => usPer(r.phases.pubsub.serverCpuMs, r.pubsub.delivered));
  const loadPerDelivery = scaleStats(p, (r) => usPer(r.phases.pubsub.loadCpuMs, r.pubsub.delivered));
  const unfinished = [...p.go, ...p.ours].filter((r) => !r.pubsub.finished).length;
  out.push(
    `Pub/sub (medians): Go's service delivered ${count(rate.go)} messages a second, ours ${count(rate.ours)}; a delivery cost the service ${perDelivery.go.toFixed(1)} µs of CPU (Go) and ${perDelivery.ours.toFixed(1)} µs (ours), ` +
      `and the generator ${loadPerDelivery.go.toFixed(1)} and ${loadPerDelivery.ours.toFixed(1)} µs. ` +
      (unfinished > 0 ? `${unfinished} run${unfinished === 1 ? '' : 's'} did not finish pub/sub within ${pubsubBoundMs / 1000} s (see the remarks under the results).` : `Every run finished within its bound of ${pubsubBoundMs / 1000} s.`),
    '',
  );

  // Every client publishing would make clients² deliveries: what that costs at the measured rates.
  const square = clients * clients;
  const goMinutes = (perDelivery.go * square) / 1e6 / 60 / machine.nproc;
  const ourMinutes = (perDelivery.ours * square) / 1e6 / 60;
  const boundMinutes = pubsubBoundMs / 60_000;
  const fits = Math.max(goMinutes, ourMinutes) < boundMinutes;
  out.push(
    `**Why ${count(publishers)} publishers, not all ${count(clients)}.** With every client publishing and every client reading everything, ${count(clients)} clients make ${count(square)} deliveries. ` +
      `At the CPU per delivery measured here that is about ${goMinutes.toFixed(1)} minutes of all ${machine.nproc} cores for Go's service and ${ourMinutes.toFixed(1)} minutes of our service's one thread, before the generator's share; ` +
      (fits
        ? `both fit the ${boundMinutes}-minute bound at this size, though not at 10,000 clients (100 times as many deliveries), so B5' keeps the shape of its full run here. `
        : `${goMinutes > boundMinutes || ourMinutes > boundMinutes ? `${goMinutes > ourMinutes ? "Go's" : 'our'} side alone passes the bound of ${boundMinutes} minutes a run, and ` : ''}` +
          `${runs} pairs would take about ${Math.round(runs * (goMinutes + ourMinutes))} minutes. `) +
      `So every client still subscribes and reads every message (the fan-out to all ${count(clients)} subscribers, which is what costs), and ${count(publishers)} of them publish.`,
    '',
  );

  const c = (name: ScalePhaseName, side: 'go' | 'ours') => cores(stat(name, 'serverCpuMs')[side], stat(name, 'ms')[side]);
  const perClient = (name: ScalePhaseName) => scaleStats(p, (r) => usPer(r.phases[name].serverCpuMs, clients));
  const share = (side: 'go' | 'ours') =>
    Math.max(...scalePhases.map((name) => (100 * stat(name, 'loadCpuMs')[side]) / (stat(name, 'ms')[side] * machine.nproc)));
  out.push(
    'Where the time goes:',
    '',
    "- **Go's service** (sync-service v0.1.0 on nhooyr.io/websocket v1.8.6) gives every connection a goroutine that reads requests and one that writes responses, and every request a goroutine of its own, " +
      `so it can use every core; here, sharing the machine with the generator (and whatever else ran; see the load average above), it kept ${c('connect', 'go')} cores busy in connect, ${c('signal_entry', 'go')} in signal_entry and ${c('barrier', 'go')} in barrier, ` +
      `ours ${c('connect', 'ours')}, ${c('signal_entry', 'ours')} and ${c('barrier', 'ours')} of its one thread. ` +
      'Each signal_entry walks every barrier waiter ever registered on its state. ' +
      'Its pub/sub is one worker goroutine per topic that wakes every 100 ms and hands each stored message to each subscription in turn, through two unbuffered channels ' +
      "(to the subscription's goroutine, then to the connection's writer), each hand-off with a timeout context of its own, and the writer flushes every frame with a write system call of its own: " +
      `${perDelivery.go.toFixed(1)} µs of CPU per delivery, ${c('pubsub', 'go')} cores busy. ` +
      'It serves one subscriber after another, so the last subscriber gets its first message only once all the others hold every message.',
    "- **Ours** runs on one node thread: accepting, the HTTP upgrade (node's HTTP parser and ws), each request's JSON.parse and validation, and every system call. " +
      `A connection costs it ${perClient('connect').ours.toFixed(0)} µs of CPU against Go's ${perClient('connect').go.toFixed(0)} µs. In a CPU profile of ours at 10,000 clients (node --cpu-prof, taken apart from the benchmark), nearly all of that is node's HTTP server, ws's upgrade and the system calls ` +
      '(the accept, the read of the request, the write of the 101 answer); the service\'s own code, a few per cent. ' +
      `signal_entry and barrier cost a read and a write per client (${perClient('signal_entry').ours.toFixed(0)} and ${perClient('barrier').ours.toFixed(0)} µs of CPU per client; Go ${perClient('signal_entry').go.toFixed(0)} and ${perClient('barrier').go.toFixed(0)} µs). ` +
      'In pub/sub a publish wakes every subscription, which queues its frame on its connection; ' +
      'the frames a connection gets in one turn of the event loop leave in one writev (`WriteBatch` in `helpers/sync-service/outbox.ts`), so a subscriber that gets a burst of messages costs a few system calls, not one per message: ' +
      `${perDelivery.ours.toFixed(1)} µs of CPU per delivery.`,
    `- **The generator** used at most ${share('go').toFixed(0)}% of the machine's CPU time in any phase against Go's service and ${share('ours').toFixed(0)}% against ours ` +
      "(more against Go's because Go's service sends every message in a TCP segment of its own, and each wakes a reader); it shares the cores with the service under test, the same way for both sides.",
    '',
  );
  return out;
}

export function b5pGap(row: Row, p: ScaleProfile, machine: Machine): string[] {
  const stat = (name: ScalePhaseName, field: 'ms' | 'serverCpuMs') => scaleStats(p, (r) => r.phases[name][field]);
  const slower = scalePhases.filter((name) => stat(name, 'ms').ratio > 1);
  const all = scaleStats(p, runMs);
  const out = [
    `Ours ${fmtMs(all.ours)} against Go's ${fmtMs(all.go)}; the pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. ` +
      `Phases where ours is slower: ${slower.map((name) => `${phaseLabel[name]} (${fmtRatio(stat(name, 'ms').ratio)})`).join(', ') || 'none'}.`,
  ];
  const io = slower.filter((name) => name !== 'pubsub');
  if (io.length > 0) {
    const perClient = (name: ScalePhaseName, side: 'go' | 'ours') => usPer(stat(name, 'serverCpuMs')[side], p.size.clients);
    const busy = (name: ScalePhaseName, side: 'go' | 'ours') => cores(stat(name, 'serverCpuMs')[side], stat(name, 'ms')[side]);
    const each = io.map(
      (name) =>
        `${phaseLabel[name]} ${perClient(name, 'ours').toFixed(0)} µs of CPU per client against Go's ${perClient(name, 'go').toFixed(0)}, ${busy(name, 'ours')} cores busy against ${busy(name, 'go')}`,
    );
    out.push(
      '',
      `In these phases both services do the same work per client, an accept and an HTTP upgrade, or a read and a write system call around one small JSON request: ${each.join('; ')}. ` +
        "Ours spends more per client in node's HTTP server, ws and the system calls than Go's runtime does, and it has one thread for all of it" +
        (Math.max(...io.map((name) => Number(busy(name, 'go')))) < 1.2
          ? "; Go's service did not get much more than one core here either, the generator and the machine's other work taking the rest. "
          : ", where Go's service used more than one core. ") +
        'What would close it: take the sockets off the thread that keeps the state. Worker threads (or processes sharing the listening socket) would accept, upgrade, read and frame, ' +
        'and pass parsed requests to the one thread that owns counters, barriers and topics, and outgoing frames back; the per-client work, nearly all of the CPU in these phases, ' +
        `would then run on all ${machine.nproc} cores where Go's already can.`,
    );
  }
  if (slower.includes('pubsub')) {
    out.push(
      '',
      "In pub/sub ours spends its time on the frames themselves (building each subscriber's frame, ws's framing, the writev of each connection's batch) on one thread; " +
        "worker threads that own the sockets would spread it over the cores, each framing and writing for its own connections from the one shared copy of the topic's messages.",
    );
  }
  return out;
}
