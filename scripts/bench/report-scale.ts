// BENCHMARKS.md's parts on one control plane per run: B2's CPU by process, B6 (this
// machine's memory per remote instance, both ways) and B7 (many instances in one
// tg-run): the method, where the time and the memory go, and what is out of reach.
import type { B2Profile } from './b2-fanout.ts';
import { B6_GOALS, perInstanceMB, type B6Path, type B6Profile, type B6Run } from './b6-memory.ts';
import type { B7Profile } from './b7-thousand.ts';
import type { Row } from './compare.ts';
import type { Machine } from './machine.ts';
import { CONTROLLER_KINDS, HOST_KINDS, type ControllerKind, type HostKind, type KindRollup, type RunMemory } from './run-sampler.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

// KiB of /proc as MB (10^6 bytes), the unit of B6's goals.
const MB = (kiB: number): number => (kiB * 1024) / 1e6;
const fmtMB = (kiB: number): string => {
  const mb = MB(kiB);
  return `${mb >= 100 ? mb.toFixed(0) : mb >= 10 ? mb.toFixed(1) : mb.toFixed(2)} MB`;
};
// Below a MB in KB, above it in MB.
const fmtKB = (kiB: number): string => (kiB * 1024 < 1e6 ? `${Math.round((kiB * 1024) / 1e3)} KB` : fmtMB(kiB));
const count = (n: number): string => n.toLocaleString('en-US');
const s1 = (ms: number | undefined): string => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);
// "a" or "a to b" of values, one decimal.
const range = (values: number[]): string => {
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  return lo.toFixed(1) === hi.toFixed(1) ? lo.toFixed(1) : `${lo.toFixed(1)} to ${hi.toFixed(1)}`;
};
// A span measured by scans a second apart: below that, it is only known to be short.
const scanned = (ms: number): string => (ms < 1000 ? 'under a second' : `about ${s1(ms)}`);

const CONTROLLER_LABEL: Record<ControllerKind, string> = {
  'tg-run': 'tg-run (node)',
  controller: "the run's controller (node)",
  'instance processes': "instances' processes (Go remote-runner)",
  nix: 'nix-store (placing the app)',
  ssh: 'ssh',
  other: 'other (go build, sh, …)',
};
const HOST_LABEL: Record<HostKind, string> = { sshd: 'sshd', agent: 'agent (remote-agent serve)', apps: 'apps', nix: 'nix-store (import)', other: 'other' };

const pathName: Record<B6Path, string> = { fleet: 'tg-run as the runner (exec:go)', 'per-instance': 'a remote-runner per instance (Nix artifact)' };

// The run whose figure is nearest the median of its path's runs.
function typical(p: B6Profile, path: B6Path): B6Run | undefined {
  const runs = p.runs[path];
  const mid = median(runs.map((r) => perInstanceMB(r, p.instances)));
  return [...runs].sort((a, b) => Math.abs(perInstanceMB(a, p.instances) - mid) - Math.abs(perInstanceMB(b, p.instances) - mid))[0];
}

// What the run's long-lived processes here (tg-run, the controller) held before the first
// app started, and what each instance added to this machine's side by the peak (its own
// process, if it has one, and what tg-run and the controller grew by).
function growth(m: RunMemory, instances: number): { fixedKiB: number; perInstanceKiB: number } | undefined {
  if (!m.peak || !m.before) return undefined;
  const fixedKiB = m.before.kiB['tg-run'] + m.before.kiB.controller;
  return { fixedKiB, perInstanceKiB: (m.peak.totalKiB - fixedKiB) / instances };
}

// The hosts' agents and apps at their peak: resident sets summed over every host.
function hostTotals(m: RunMemory): { agentKiB: number; appsKiB: number; sshdKiB: number; apps: number; agents: number } {
  const hosts = Object.values(m.hosts);
  const sum = (f: (h: (typeof hosts)[number]) => number) => hosts.reduce((n, h) => n + f(h), 0);
  return { agentKiB: sum((h) => h.kiB.agent), appsKiB: sum((h) => h.kiB.apps), sshdKiB: sum((h) => h.kiB.sshd), apps: sum((h) => h.count.apps), agents: sum((h) => h.count.agent) };
}

/** Method bullets for B6 and B7. */
export function scaleMethod(b6: B6Profile | undefined, b7: B7Profile | undefined): string[] {
  const out: string[] = [];
  const sampling =
    "Sampling (`scripts/bench/run-sampler.ts`): every 250 ms the VmRSS (`/proc/<pid>/status`) of every process on this machine's side of the run: tg-run and every process below it (the instances' processes, when there are any), " +
    "and the run's controller, which is detached (a session of its own) and found by its socket (`/tmp/remote-runner-<uid>/<sha256(run id)[:20]>.sock` on its command line), with its children; " +
    "every second a scan of `/proc` finds new processes and measures the lab hosts' (a host's processes are those in its PID namespace: its sshd, the agent, the apps below the agent). " +
    "Once, when every instance's app is alive, each process's `smaps_rollup` gives its PSS: RSS counts a page that several processes map (a binary's code, which every process of that binary shares) once in each of them, PSS divides it among them.";
  if (b6) {
    out.push(
      `- **B6** (${b6.runs.fleet.length} run${b6.runs.fleet.length === 1 ? '' : 's'} of each way, alternating): ${count(b6.instances)} instances of examples/go-plan's \`sleep\` (it writes a file to its outputs, sleeps ${b6.sleepSecs} s and succeeds) on ${b6.fresh ? '4 fresh lab hosts (empty stores)' : 'the 4 lab hosts as the benchmark before left them'}, round robin, by the build's own tg-run, two ways: ` +
        "**tg-run as the runner** (`--builder exec:go`: tg-run builds the plan with `go build` and places every instance through its own fleet, one connection, one copy and one agent per host, with no process per instance here), and " +
        "**a remote-runner per instance** (`--use-build` of go-plan's Nix artifact, `lib.testgroundPlan` of the same build: tg-run starts the artifact's `bin/remote-runner`, the static Go process, for every instance, as Testground's local:exec would, and each hands its instance to the run's one controller). " +
        (b6.warm ? 'After the last run of tg-run as the runner, it runs once more on the same hosts, which then hold the app and the agent (nothing to copy), to show what the copies leave in its memory; that run is not in the figure. ' : '') +
        "The figure is the largest sum of the resident sets of every process on this machine's side (tg-run, the controller, the instances' processes, and any nix-store, ssh or go they start; not the lab hosts) among the samples taken while every instance's app was alive on its host, divided by the number of instances; MB are 10^6 bytes.",
    );
  }
  if (b7) {
    out.push(
      `- **B7** (one run): ${count(b7.instances)} instances of the same \`sleep\` (${b7.sleepSecs} s) on ${b7.fresh ? '4 fresh lab hosts' : 'the same 4 lab hosts'} in one tg-run, tg-run as the runner (exec:go), bounded at ${Math.round(b7.boundMs / 1000)} s (tg-run's \`--timeout\`) and stopped should the machine have less than 2 GB of memory left. ` +
        "Every instance must succeed (the figure is the share that did). Reported: the wall time, this machine's RSS per instance, and each host's, the agent and the apps, per instance there, at their peak while every instance runs.",
    );
  }
  if (b6 || b7) out.push(`  ${sampling}`);
  return out;
}

/** B2: CPU seconds by kind of process, here and on the hosts (medians over the runs). */
export function b2KindsTable(b2: B2Profile): string[] {
  if (b2.byKind.ours.length === 0) return [];
  const med = (side: 'ours' | 'baseline', where: 'controller' | 'hosts', kind: string) => median(b2.byKind[side].map((c) => (c[where] as Record<string, number>)[kind] ?? 0));
  const out = [
    'CPU time by kind of process (medians; user + system seconds, from a scan of `/proc` every 250 ms, so a process that lives less than that may be missed). ' +
      "In the baseline every process here is `baseline.sh`, ssh, scp or nix (\"other\", \"ssh\", \"nix\"), and on the hosts the apps run under sshd (\"other\"):",
    '',
    '| where | process | ours | baseline |',
    '|---|---|---:|---:|',
  ];
  for (const kind of CONTROLLER_KINDS) out.push(`| here | ${CONTROLLER_LABEL[kind]} | ${med('ours', 'controller', kind).toFixed(2)} s | ${med('baseline', 'controller', kind).toFixed(2)} s |`);
  for (const kind of HOST_KINDS) out.push(`| hosts | ${HOST_LABEL[kind]} | ${med('ours', 'hosts', kind).toFixed(2)} s | ${med('baseline', 'hosts', kind).toFixed(2)} s |`);
  out.push('');
  return out;
}

/** The profile sections of B6 and B7. */
export function scaleSections(b6: B6Profile | undefined, b7: B7Profile | undefined): string[] {
  const out: string[] = [];
  if (b6) out.push(...b6Section(b6));
  if (b7) out.push(...b7Section(b7));
  return out;
}

function b6Section(p: B6Profile): string[] {
  const runs = { fleet: typical(p, 'fleet'), 'per-instance': typical(p, 'per-instance') };
  const out = [
    `### B6: this machine's memory at ${count(p.instances)} instances`,
    '',
    "Each way's run nearest its median; resident sets at the peak while every instance ran, by kind of process (with how many there were):",
    '',
    `| | ${pathName.fleet} | ${pathName['per-instance']} |`,
    '|---|---:|---:|',
  ];
  const cell = (run: B6Run | undefined, kind: ControllerKind) => {
    const kiB = run?.memory.peak?.kiB[kind] ?? 0;
    const n = run?.memory.peak?.count[kind] ?? 0;
    return n === 0 ? '—' : `${fmtMB(kiB)}${n > 1 ? ` (${n} × ${fmtMB(kiB / n)})` : ''}`;
  };
  for (const kind of CONTROLLER_KINDS) {
    if (!runs.fleet?.memory.peak?.count[kind] && !runs['per-instance']?.memory.peak?.count[kind]) continue;
    out.push(`| ${CONTROLLER_LABEL[kind]} | ${cell(runs.fleet, kind)} | ${cell(runs['per-instance'], kind)} |`);
  }
  const total = (run: B6Run | undefined) => (run?.memory.peak ? fmtMB(run.memory.peak.totalKiB) : 'n/a');
  const per = (run: B6Run | undefined) => (run ? `**${perInstanceMB(run, p.instances).toFixed(2)} MB**` : 'n/a');
  const pss = (run: B6Run | undefined) => {
    const r = run?.memory.rollups.controller;
    if (!r) return 'n/a';
    const sum = Object.values(r).reduce((n, k) => n + (k?.pssKiB ?? 0), 0);
    return `${fmtMB(sum)} (${(MB(sum) / p.instances).toFixed(2)} MB per instance)`;
  };
  const before = (run: B6Run | undefined) => {
    const g = run && growth(run.memory, p.instances);
    return g ? fmtMB(g.fixedKiB) : 'n/a';
  };
  const grown = (run: B6Run | undefined) => {
    const g = run && growth(run.memory, p.instances);
    return g ? fmtKB(g.perInstanceKiB) : 'n/a';
  };
  out.push(
    `| sum at the peak | ${total(runs.fleet)} | ${total(runs['per-instance'])} |`,
    `| per instance | ${per(runs.fleet)} | ${per(runs['per-instance'])} |`,
    `| PSS of the same processes (shared pages divided among the processes that map them) | ${pss(runs.fleet)} | ${pss(runs['per-instance'])} |`,
    `| tg-run and the controller just before the first app started | ${before(runs.fleet)} | ${before(runs['per-instance'])} |`,
    `| what each instance adds: (peak − that) / instances | ${grown(runs.fleet)} | ${grown(runs['per-instance'])} |`,
    '',
  );
  const nodeOf = (run: B6Run | undefined, kind: ControllerKind) => run?.memory.rollups.controller[kind];
  const tg = nodeOf(runs.fleet, 'tg-run');
  const ctl = nodeOf(runs['per-instance'], 'controller');
  const go = nodeOf(runs['per-instance'], 'instance processes');
  const fleetGrowth = runs.fleet && growth(runs.fleet.memory, p.instances);
  const oneGo = go && go.count > 0 ? { rss: go.rssKiB / go.count, pss: go.pssKiB / go.count, anon: go.anonKiB / go.count } : undefined;
  out.push('Where the memory goes:', '');
  if (tg) {
    out.push(
      `- **tg-run as the runner** is one node process holding everything: ${fmtMB(tg.rssKiB)} resident when every instance ran, of which ${fmtMB(tg.anonKiB)} anonymous (V8's heap and node's buffers) and the rest pages of the node binary and its libraries, shared with every other node process. ` +
        (fleetGrowth
          ? `Most of it is there before the first instance starts (${fmtMB(fleetGrowth.fixedKiB)}: node, the bundled code, the sync service, the build and the closure copies, whose buffers the heap keeps); each instance then adds about ${fmtKB(fleetGrowth.perInstanceKiB)} ` +
            "(its sync-service WebSocket, the SSH channel that forwards it, its entry in the host's agent and its outputs stream). So the figure per instance falls as the run grows: the fixed part divided by the instances, plus that growth."
          : ''),
    );
  }
  const warm = p.warm && growth(p.warm.memory, p.instances);
  if (warm && fleetGrowth) {
    out.push(
      `- **What the copies leave behind.** On warm hosts (nothing to copy) tg-run as the runner held ${fmtMB(warm.fixedKiB)} before the first app started, against ${fmtMB(fleetGrowth.fixedKiB)} after copying the app and the agent to 4 cold hosts: ` +
        (fleetGrowth.fixedKiB - warm.fixedKiB > 5 * 1024
          ? `the copies' buffers (each \`nix-store --export\` is read here and written to an SSH channel) leave about ${fmtMB(fleetGrowth.fixedKiB - warm.fixedKiB)} in the process after they end. `
          : 'the copies leave next to nothing behind. ') +
        `At the peak the warm run came to ${perInstanceMB(p.warm!, p.instances).toFixed(2)} MB per instance.`,
    );
  }
  if (ctl || oneGo) {
    out.push(
      '- **A remote-runner per instance** adds one process here per instance: ' +
        (oneGo ? `the Go remote-runner, ${fmtMB(oneGo.rss)} resident each, of which ${fmtMB(oneGo.anon)} its own (anonymous) and the rest the binary's pages, which every instance's process shares (PSS ${fmtMB(oneGo.pss)} each); ` : '') +
        (ctl ? `the run's controller is one node process (${fmtMB(ctl.rssKiB)}, ${fmtMB(ctl.anonKiB)} anonymous), and tg-run itself only starts the processes and serves the sync service. ` : '') +
        'RSS counts the shared pages in every process, so the sum overstates what the machine spends; the PSS row above is what it does spend.',
    );
  }
  out.push('');
  return out;
}

function b7Section(p: B7Profile): string[] {
  const m = p.memory;
  const h = hostTotals(m);
  const peak = m.peak;
  const out = [
    `### B7: ${count(p.instances)} instances in one tg-run`,
    '',
    `${p.counts}, in ${fmtMs(p.ms)} (each instance sleeps ${p.sleepSecs} s)${p.stopped ? `; the run was stopped (${p.stopped === 'time' ? `the bound of ${Math.round(p.boundMs / 1000)} s` : 'low memory'})` : ''}.`,
    '',
    '| | |',
    '|---|---:|',
    `| first app alive on a host | ${s1(m.firstAppMs)} |`,
    `| every app alive at once | ${m.allRunning ? s1(m.allAppsMs) : `never (at most ${count(m.maxAlive)})`} |`,
    `| every app gone | ${s1(m.appsGoneMs)} |`,
    `| tg-run exited | ${s1(p.ms)} |`,
    `| per instance (tg-run's summary, medians): copy wait, run, pull | ${s1(p.phases.copy)}, ${s1(p.phases.run)}, ${s1(p.phases.pull)} |`,
    `| this machine's side at the peak (tg-run${peak && peak.count.other + peak.count.nix + peak.count.ssh > 0 ? ' and its children' : ''}) | ${peak ? fmtMB(peak.totalKiB) : 'n/a'} |`,
    `| per instance | ${peak ? `**${fmtKB(peak.totalKiB / p.instances)}**` : 'n/a'} |`,
    `| before the first app started | ${m.before ? fmtMB(m.before.totalKiB) : 'n/a'} |`,
    `| the hosts' agents and apps (RSS), per instance | **${h.apps > 0 ? fmtMB((h.agentKiB + h.appsKiB) / h.apps) : 'n/a'}** |`,
    `| the machine's CPU, busy / available | ${p.cpuBusyS.toFixed(0)} / ${p.capacityS.toFixed(0)} CPU-seconds |`,
    `| the least memory available during the run | ${count(Math.round(p.minAvailableMB))} MB |`,
    '',
    'Each host at its peak (RSS, from `/proc` of the host\'s PID namespace):',
    '',
    '| host | apps | agent | apps\' RSS | agent and apps per instance | sshd |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const [host, s] of Object.entries(m.hosts)) {
    const per = s.count.apps > 0 ? fmtMB((s.kiB.agent + s.kiB.apps) / s.count.apps) : 'n/a';
    out.push(`| ${host} | ${count(s.count.apps)} | ${fmtMB(s.kiB.agent)} | ${fmtMB(s.kiB.apps)} | ${per} | ${fmtMB(s.kiB.sshd)} (${s.count.sshd} processes) |`);
  }
  const apps = m.rollups.hosts.apps;
  const agent = m.rollups.hosts.agent;
  const tg = m.rollups.controller['tg-run'];
  out.push('');
  out.push(
    'Where the memory goes: ' +
      (tg ? `here, tg-run is the only process: ${fmtMB(tg.rssKiB)} resident, ${fmtMB(tg.anonKiB)} of it anonymous, the rest the node binary's pages; ` : '') +
      (m.before && peak ? `from before the first instance to the peak it grew by ${fmtMB(peak.totalKiB - m.before.totalKiB)}, ${fmtKB((peak.totalKiB - m.before.totalKiB) / p.instances)} per instance. ` : '') +
      (apps
        ? `On the hosts, an app (go-plan, a Go binary with sdk-go) is ${fmtMB(apps.rssKiB / apps.count)} resident, but only ${fmtMB(apps.anonKiB / apps.count)} of it its own (PSS ${fmtMB(apps.pssKiB / apps.count)}): the rest is the binary's code, shared by every app on the host and counted again in each. `
        : '') +
      (agent && h.apps > 0 ? `Each host's agent is one process for all its instances (${fmtMB(agent.rssKiB / Math.max(agent.count, 1))} at ${count(Math.round(h.apps / Math.max(agent.count, 1)))} instances, ${fmtKB(agent.rssKiB / h.apps)} per instance). ` : '') +
      (h.sshdKiB > 0 ? `sshd, which carries every instance's forwarded sync-service connection over the run's one connection, holds ${fmtMB(h.sshdKiB / Math.max(Object.keys(m.hosts).length, 1))} per host.` : ''),
    '',
  );
  const files = (r: KindRollup | undefined, name: string) =>
    r && r.maxOpenFiles > 0 ? `${name} ${count(r.maxOpenFiles)}${Number.isFinite(r.openFilesLimit) ? ` (limit ${count(r.openFilesLimit)})` : ''}` : undefined;
  const sshd = m.rollups.hosts.sshd;
  const fileParts = [files(tg, 'tg-run'), files(sshd, "a host's sshd"), files(agent, "a host's agent")].filter(Boolean);
  const perHost = h.apps / Math.max(Object.keys(m.hosts).length, 1);
  if (fileParts.length > 0) {
    out.push(
      `Open files when every app ran, the most in one process (and its soft RLIMIT_NOFILE): ${fileParts.join(', ')}, with ${count(Math.round(perHost))} instances on each host. ` +
        "tg-run's grow with the instances (each one's sync-service connection reaches the sync service in tg-run through the forward), the agent's by its pipes to each app, and sshd's by each forwarded connection. " +
        'Node and Go raise their soft limit to the hard one by themselves; sshd keeps the one it was started with' +
        (sshd && sshd.maxOpenFiles > 0 && perHost > 0
          ? `, so with the common soft limit of 1,024 a host's sshd would run out of files at about ${count(Math.floor((1024 * perHost) / sshd.maxOpenFiles / 50) * 50)} instances on that host.`
          : '.'),
      '',
    );
  }
  const cpu = m.cpuS;
  const top = [
    ...CONTROLLER_KINDS.map((k) => [`here: ${CONTROLLER_LABEL[k]}`, cpu.controller[k]] as const),
    ...HOST_KINDS.map((k) => [`hosts: ${HOST_LABEL[k]}`, cpu.hosts[k]] as const),
  ]
    .filter(([, s]) => s >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  out.push(
    `Where the time goes: of ${fmtMs(p.ms)}, the instances sleep ${p.sleepSecs} s; ` +
      `starting them took ${m.firstAppMs !== undefined && m.allAppsMs !== undefined ? scanned(m.allAppsMs - m.firstAppMs) : 'n/a'} from the first app to the last, ` +
      `and ending them (the apps' exits, outputs pulled, work dirs removed) ${m.appsGoneMs !== undefined && m.allAppsMs !== undefined ? scanned(m.appsGoneMs - m.allAppsMs - p.sleepSecs * 1000) : 'n/a'} past the sleep ` +
      '(times from the scans, a second apart). ' +
      `CPU by kind of process (seconds): ${top.map(([k, s]) => `${k} ${s.toFixed(1)}`).join(', ')}.`,
    '',
  );
  return out;
}

/** What is out of reach in B6 or B7, and why. */
export function scaleGap(row: Row, b6: B6Profile | undefined, b7: B7Profile | undefined, machine: Machine): string[] {
  if (row.id.startsWith('B6') && b6) {
    const path: B6Path = row.id === 'B6 tg-run' ? 'fleet' : 'per-instance';
    const run = typical(b6, path);
    const g = run && growth(run.memory, b6.instances);
    if (!run || !g) return [`${fmtRatio(median(row.ratios))} MB per instance against a goal of ${B6_GOALS[path]} MB.`];
    const at = (n: number) => MB(g.fixedKiB) / n + MB(g.perInstanceKiB);
    const needed = MB(g.fixedKiB) / Math.max(B6_GOALS[path] - MB(g.perInstanceKiB), 1e-9);
    return [
      `${fmtRatio(median(row.ratios))} MB per instance at ${count(b6.instances)} instances against a goal of ${B6_GOALS[path]} MB. ` +
        `${path === 'fleet' ? 'tg-run' : 'tg-run and the controller'} held ${fmtMB(g.fixedKiB)} before the first app started, and each instance adds ${fmtKB(g.perInstanceKiB)}${path === 'fleet' ? '' : ' (its own process, and what tg-run and the controller grew by)'}, ` +
        `so the figure is that fixed part divided among the instances plus what each adds: ${at(256).toFixed(2)} MB at 256 instances, ${at(1000).toFixed(2)} MB at 1,000` +
        (MB(g.perInstanceKiB) < B6_GOALS[path] ? `; the goal is met from about ${count(Math.ceil(needed))} instances on.` : '; what each instance adds is alone above the goal.'),
    ];
  }
  if (row.id === 'B7' && b7) {
    return [
      `${count(b7.succeeded)} of ${count(b7.instances)} instances succeeded (${b7.counts})${b7.stopped ? `; the run was stopped (${b7.stopped === 'time' ? 'its time bound' : 'low memory'})` : ''}. ` +
        `The machine's ${machine.nproc} cores were busy ${b7.cpuBusyS.toFixed(0)} of ${b7.capacityS.toFixed(0)} CPU-seconds.`,
    ];
  }
  return [];
}

/** What a B2 run's text needs besides its profile: the closures sent and, when B4 ran, one SSH stream's rate alone. */
export interface B2Context {
  closures?: { app: { bytes: number; paths: number }; agent: { bytes: number; paths: number } };
  /** MB/s of `ssh host 'cat > /dev/null'` alone (B4's stage), if measured. */
  sshStreamMBs?: number;
}

// The CPU seconds of the run's own processes (here and on the hosts), one run's table.
const ownCpu = (c: RunMemory['cpuS']): number => [...Object.values(c.controller), ...Object.values(c.hosts)].reduce((n, s) => n + s, 0);

/** B2: why ours is where it is, from its phases, its copy lines and its CPU by process. */
export function b2Gap(b2: B2Profile, ctx: B2Context, base: number, ours: number, machine: Machine): string[] {
  const target = base * 0.25;
  const copies = b2.copies;
  const trials = copies.map((c) => /trial of (\d+) MB: ([\d.]+) s as it is, ([\d.]+) s through zstd/.exec(c.note)).filter((m): m is RegExpExecArray => m !== null);
  const probed = copies.map((c) => /zstd(?: -\d+)? \(link ([\d.]+) MB\/s\)/.exec(c.note)).filter((m): m is RegExpExecArray => m !== null);
  const noZstd = copies.filter((c) => /no zstd on both ends/.test(c.note)).length;
  // Only a copy from here decides on compression; a relay passes the stream on as it came.
  const fromHere = copies.filter((c) => !/relayed from/.test(c.note));
  const ownOurs = median(b2.byKind.ours.map(ownCpu));
  const ownBase = median(b2.byKind.baseline.map(ownCpu));
  const busyOurs = median(b2.cpu.ours);
  const capOurs = median(b2.cpu.capacityS.ours);
  const kind = (side: 'ours' | 'baseline', where: 'controller' | 'hosts', k: string) => median(b2.byKind[side].map((c) => (c[where] as Record<string, number>)[k] ?? 0));
  const c = ctx.closures;
  const perHostMB = c ? (c.app.bytes + c.agent.bytes) / 1e6 : undefined;
  const out = [
    `Ours takes ${fmtMs(ours)}, the baseline ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. ` +
      `Per instance (medians of tg-run's summary): ${s1(b2.ours.duration)} in all, of which ${s1(b2.ours.copy)} waiting for its host's placement (the copy), ${s1(b2.ours.run)} for the app's run and ${s1(b2.ours.pull)} for the pull; ` +
      "the rest of the wall time is tg-run's and the controller's start, and the end of the run (every host's agent stopped, the connections closed).",
    '',
    `- **The copy is most of it.** Each host is placed once, by the first instance that needs it${perHostMB ? `: ${perHostMB.toFixed(0)} MB (the app's closure, node and one bundle, and the agent)` : ''}; ` +
      `${fromHere.length} of the ${copies.length} copies came from here and ${copies.length - fromHere.length} were relayed by a host that held or was receiving the closure (fan-out: hosts that ask together form a chain fed as the stream arrives). ` +
      (copies.length > 0 ? `They took ${s1(median(copies.map((x) => x.s)) * 1000)} each (median of ${copies.length}, ${s1(Math.min(...copies.map((x) => x.s)) * 1000)} to ${s1(Math.max(...copies.map((x) => x.s)) * 1000)}). ` : '') +
      (ctx.sshStreamMBs && perHostMB
        ? `At the rate one SSH stream reaches alone here (B4's \`ssh host 'cat > /dev/null'\`, ${ctx.sshStreamMBs.toFixed(0)} MB/s), the four hosts' ${(4 * perHostMB).toFixed(0)} MB would be ${((4 * perHostMB) / ctx.sshStreamMBs).toFixed(1)} s of one stream; ` +
          'but every copy and relay shares the two cores with `nix-store --export` here, `--import` on the hosts and the encryption at both ends.'
        : ''),
    ...(trials.length + probed.length + noZstd > 0
      ? [
          `- **Deciding on compression takes time of its own.** Before sending, each copy from here measures the link (two small transfers) and, on a fast link, sends a ${trials[0]?.[1] ?? 17} MB sample of the export both ways, as it is and through zstd (\`helpers/closure/compression.ts\`). ` +
            (trials.length > 0
              ? `${trials.length} of ${fromHere.length} copies from here ran that trial: its two sends took ${s1(median(trials.map((m) => Number(m[2]) + Number(m[3]))) * 1000)} (median), before the copy proper, with the other hosts' copies competing for the same cores. `
              : '') +
            (probed.length > 0
              ? `${probed.length} of ${fromHere.length} chose zstd at once because the probe measured the link at ${range(probed.map((m) => Number(m[1])))} MB/s: a veth pair, which carries far more, but the probe's transfers share two busy cores with the other copies, so it measures the CPU, not the link. `
              : '') +
            (noZstd > 0
              ? `${noZstd} of ${fromHere.length} went uncompressed without a trial because the check for zstd on the host (\`command -v zstd\`, a quick command) came back without an exit status: \`ssh.run\` attached its listeners after the exec's confirmation, and a quick command's exit status can arrive in the same packet (fixed in \`helpers/ssh/session.ts\`; the same race could fail \`nix-store --check-validity\`). `
              : '') +
            'On this machine the decision comes out differently from run to run, and either way it is paid for in the CPU that the copies themselves need.',
        ]
      : []),
    `- **The CPU is shared.** The run's own processes used ${ownOurs.toFixed(1)} CPU-seconds (ours; the baseline's ${ownBase.toFixed(1)}), ` +
      `while the machine was busy ${busyOurs.toFixed(0)} of ${capOurs.toFixed(0)} CPU-seconds during ours: the rest was other work on the machine (see the load average above), which stretches every phase. ` +
      `Of ours, the controller took ${kind('ours', 'controller', 'controller').toFixed(1)} s (SSH encryption of the four copies, the sync service's connections), sshd on the hosts ${kind('ours', 'hosts', 'sshd').toFixed(1)} s, the hosts' \`nix-store --import\` ${kind('ours', 'hosts', 'nix').toFixed(1)} s and the apps ${kind('ours', 'hosts', 'apps').toFixed(1)} s; ` +
      `the baseline's OpenSSH clients alone took ${kind('baseline', 'controller', 'ssh').toFixed(1)} s here and sshd ${kind('baseline', 'hosts', 'sshd').toFixed(1)} s on the hosts (sixteen \`nix copy\` runs and five connections per instance).`,
    '',
    (copies.length > 0 && Math.max(...copies.map((x) => x.s)) * 1000 > target
      ? `What would close it: the slowest copy alone took ${s1(Math.max(...copies.map((x) => x.s)) * 1000)}, more than the goal's whole ${fmtMs(target)}, so on this machine it needs fewer bytes or fewer copies, not a faster control plane: `
      : `What would close it: the copies are most of the goal's ${fmtMs(target)}, so on this machine it needs fewer bytes or fewer copies, not a faster control plane: `) +
      "hosts that already hold the app's closure (their substituters, which the copy now asks first, or a run before this one: then a host is placed in well under a second), " +
      `and a compression decision that costs nothing when it cannot pay: made once per run rather than per host, or skipped when ${machine.nproc} cores are already busy with the copies. ` +
      'On real hosts with their own CPUs, the copies would run in parallel on both ends and the baseline, which sends the closure once per instance, would be limited by the network instead.',
  ];
  return out;
}
