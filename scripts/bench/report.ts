// BENCHMARKS.md: the machine, the method, the results and what the profiles show.
import type { Plan } from '../bench.ts';
import type { B1Profile } from './b1-overhead.ts';
import type { B2Profile } from './b2-fanout.ts';
import type { LocalTarProfile, PullProfile, PullVariants } from './b3-outputs.ts';
import type { CopyProfile } from './b4-copy.ts';
import type { ClosureSize } from './lab.ts';
import type { SyncCpu } from './b5-sync.ts';
import type { B6Profile } from './b6-memory.ts';
import type { B7Profile } from './b7-thousand.ts';
import { runMs, scalePhases, type ScalePhaseName, type ScaleProfile, type ScaleRun } from './b5-sync-scale.ts';
import { met, ratioOf, type Row } from './compare.ts';
import { networkGap, networkMethod, networkSections, type NetworkFindings } from './report-network.ts';
import { b2Gap, b2KindsTable, scaleGap, scaleMethod, scaleSections } from './report-scale.ts';
import type { Machine } from './machine.ts';
import { markdownTable, samplesTable } from './table.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

export interface Findings extends NetworkFindings {
  labUpMs?: number;
  /** What a cold host receives: the app's closure and the agent's. */
  closures?: { app: ClosureSize; agent: ClosureSize };
  b1?: B1Profile;
  b2?: B2Profile;
  b3?: Record<string, PullProfile>;
  b3Local?: LocalTarProfile;
  b3Variants?: PullVariants;
  b4?: CopyProfile;
  b5?: SyncCpu;
  b5p?: ScaleProfile;
  b6?: B6Profile;
  b7?: B7Profile;
}

export interface ReportInput {
  machine: Machine;
  mode: string;
  plan: Plan;
  rows: Row[];
  findings: Findings;
  seconds: number;
  date: string;
  /** The commit the runner was built from. */
  source: string;
}

const byId = (rows: Row[], id: string): Row | undefined => rows.find((r) => r.id === id);
const mbps = (row: Row | undefined, which: 'baseline' | 'ours'): string =>
  row?.bytes ? `${(row.bytes / 1e6 / (median(row[which]) / 1000)).toFixed(0)} MB/s` : 'n/a';

export function renderReport(input: ReportInput): string {
  const { machine, plan, rows, findings } = input;
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    `Made by \`npm run bench\` (${input.mode} run of ${input.source}, ${Math.round(input.seconds)} s, ${input.date}). ` +
      'Every figure below is a whole-process wall time (B6 and B7: also resident sets) on lab hosts (`scripts/lab`): network namespaces with their own `/nix` and sshd, ' +
      'on this one machine, so the "network" is a veth pair and every process of both sides shares the same cores; ' +
      "B4', B8 and B9 shape those links to a network's rate and delay (see the method).",
    '',
  );
  out.push('## Machine', '');
  out.push(
    `| | |`,
    `|---|---|`,
    `| CPU | ${machine.cpu}, ${machine.nproc} cores (nproc) |`,
    `| memory | ${machine.memoryGiB} GiB |`,
    `| kernel | ${machine.kernel} |`,
    `| node | ${machine.node} |`,
    `| nix | ${machine.nix} |`,
    `| OpenSSH | ${machine.openssh} |`,
    `| load average at the start | ${machine.loadavg} (other jobs may share the machine; alternating the sides spreads their load over both) |`,
    '',
  );
  out.push(...methodSection(plan, findings));
  out.push('## Results', '');
  out.push(
    'Ratios are ours over the baseline for times (lower is better) and ours over the baseline for throughputs (higher is better); ' +
      'each is the median of the per-pair ratios, so it need not equal the ratio of the two medians. ' +
      'B6 and B7 have no baseline: their figure is a value (MB of RSS per instance; the share of instances that succeeded), as the column "ratio is" says, and their "ours" median is the wall time of a run. ' +
      "B9's ratio is of the bytes sent from this machine; its medians are wall times.",
    '',
    markdownTable(rows),
    '',
  );
  const b4raw = byId(rows, 'B4 vs ssh');
  const b4nix = byId(rows, 'B4 vs nix copy');
  if (b4raw) out.push(`Throughput in B4 (medians): ours ${mbps(b4raw, 'ours')}, raw ssh ${mbps(b4raw, 'baseline')}, nix copy ${mbps(b4nix, 'baseline')}.`, '');
  const b3big = byId(rows, 'B3 big file');
  if (b3big) out.push(`Throughput in B3 big file (medians): ours ${mbps(b3big, 'ours')}, scp ${mbps(b3big, 'baseline')}.`, '');
  for (const row of rows) for (const remark of row.remarks) out.push(`- ${row.id}: ${remark}`);
  out.push('', '<details><summary>Every pair</summary>', '', samplesTable(rows), '', '</details>', '');
  out.push(...profileSection(rows, findings));
  if (findings.b5p) out.push(...b5pSection(findings.b5p, machine));
  out.push(...scaleSections(findings.b6, findings.b7));
  out.push(...networkSections(findings));
  out.push(...gapsSection(rows, findings, machine));
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(bytes < 10e6 ? 1 : 0)} MB`;
const paths = (n: number): string => `${n} store path${n === 1 ? '' : 's'}`;

// The closures a cold host receives, as the method and B2's text quote them.
function closureText(f: Findings): string {
  const c = f.closures;
  if (!c) return 'the app\'s closure and the agent';
  return `the app's closure (node and one bundle, ${mb(c.app.bytes)} in ${paths(c.app.paths)}) and the agent (a static binary, ${mb(c.agent.bytes)} in ${paths(c.agent.paths)})`;
}

function methodSection(plan: Plan, f: Findings): string[] {
  return [
    '## Method',
    '',
    '- **Pairs, alternating.** Each comparison runs baseline, ours, baseline, ours, … in one run; the figure quoted is the median of the per-pair ratios. ' +
      'Each side runs once untimed first (warm page caches, closure in place where the benchmark says so), except in B2, which measures cold hosts.',
    '- **Baseline** (B1, B2) is the original prototype\'s flow, reimplemented in `scripts/bench/baseline.sh` with the same commands: ' +
      '`nix copy -s --to ssh://host <app>`; `ssh host mktemp -d`; `ssh -R 5050:127.0.0.1:<sync port> -R 8086:… host \'env -S "<TEST_* …>" <app>/bin/plan\'` ' +
      '(the environment grepped from `env` as the prototype did, with `TEST_OUTPUTS_PATH` set to the remote temp dir); ' +
      '`scp -r host:<dir>/* $TEST_OUTPUTS_PATH`; `ssh host rm -r <dir>`. Every `ssh` is a new connection, as in the prototype. ' +
      'It takes its host from the caller (B1) or from an flock\'ed counter, round robin (B2), where the prototype asked its Go choose-server.',
    `- **B1** (${plan.b1Pairs} pairs): one instance of the plan case \`ok\` on lab-h1, whose store already holds the closure. ` +
      'Ours is `<runner out>/bin/remote-runner` (the Go process, which, as the only instance of its run, starts the run\'s controller) started with the exact local:exec environment (as tg-run builds it) and an in-process sync service; ' +
      'the baseline gets the same environment and the same sync service. Both must exit 0 with outputs.',
    `- **B2** (${plan.b2Pairs} pair${plan.b2Pairs === 1 ? '' : 's'}): ${plan.b2Instances} instances of \`ok\` on 4 hosts, round robin, started by the build's own tg-run (\`<package>/bin/tg-run single --use-build\`) for both sides ` +
      '(ours: the runner\'s Nix artifact, whose `bin/remote-runner` is the Go process that hands its instance to the run\'s one controller, which opens each host once: one connection, one placement, one agent; ' +
      'baseline: an artifact whose `bin/remote-runner` runs `baseline.sh`). ' +
      `A fresh \`labUp(4)\` (empty stores) precedes each side's run. Ours puts ${closureText(f)} on each host; the baseline copies the app's closure.`,
    `- **B3** (${plan.b3Pairs} pair${plan.b3Pairs === 1 ? '' : 's'}): pull an outputs dir from lab-h2: ${plan.b3Files} files of 0.2–4 KiB in dirs of 100, and, separately, one file of ${plan.b3BigBytes / 1e6} MB. ` +
      'Ours measures our transport directly, as a whole process: resolve the alias (`ssh -G`), connect with ssh2, run `<agent>/bin/remote-agent pack <dir>` on the host onto an exec channel ' +
      '(the build\'s agent, copied to the host as a run copies it; `pack` is the code that packs an instance\'s outputs), ' +
      'and `extractOutputs` (the runner\'s code) here; baseline `scp -r host:<dir> <local>`. Both results are checked (file count and bytes).',
    `- **B4** (${plan.b4Pairs} round${plan.b4Pairs === 1 ? '' : 's'}): a ${plan.b4Bytes / 1e6} MB store path of random data (\`nix-store --add\` of \`head -c … /dev/urandom\`) to lab-h3, deleted from the host's store after every run. ` +
      'Ours: ssh -G, ssh2 connect, `copyClosure`. Raw: `ssh host \'cat > /dev/null\' < file` (same bytes). Also `nix copy --to ssh://host`. Ratios are throughput ratios (the other side\'s time over ours).',
    `- **B5** (${plan.b5Pairs} pair${plan.b5Pairs === 1 ? '' : 's'}): our sync service (the build's \`bin/sync-service\`) and Testground's Go service v0.1.0 (\`test/go-sync-peer\`), each its own process, under one load script with raw \`ws\` clients in the benchmark process: ` +
      `${plan.b5Clients} clients connect (100 handshakes at a time), \`signal_entry\` and wait on a barrier for all; then ${plan.b5Subscribers} subscribers and ${plan.b5Publishers} publishers × ${plan.b5Messages} messages on one topic (up to 64 unanswered publishes per publisher), ` +
      'timed until every subscriber holds every message.',
    ...(f.b5p ? [b5pMethod(f.b5p)] : []),
    ...scaleMethod(f.b6, f.b7),
    ...networkMethod(f),
    '- `npm run bench -- --quick` runs fewer pairs and smaller sizes and prints the table without writing this file, as does `--only` (`--write` writes it anyway).',
    '',
  ];
}

const pct = (a: number, b: number): string => `${Math.round((100 * a) / b)}%`;
const ms0 = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? 'n/a' : fmtMs(ms));

// A part of B1's profile by the start of its label.
function part(b1: B1Profile, prefix: string): number | undefined {
  const key = Object.keys(b1.parts).find((k) => k.startsWith(prefix));
  return key === undefined ? undefined : b1.parts[key];
}

// The app's own time: measured alone on the host, or else the baseline's ssh step minus a bare connection.
function appAlone(b1: B1Profile): number | undefined {
  const direct = part(b1, 'remote: the app');
  if (direct !== undefined) return direct;
  const run = b1.baselineSteps.run;
  const ssh = part(b1, 'OpenSSH: ssh host true');
  return run !== undefined && ssh !== undefined ? Math.max(run - ssh, 0) : undefined;
}

// True when the build already sets TCP_NODELAY: the exec round trip shows no delayed ACK.
const nagleFixed = (b1: B1Profile): boolean => b1.noDelay.now.roundTrip < 15;

function profileSection(rows: Row[], f: Findings): string[] {
  const out = ['## Where the time goes', ''];
  if (f.b1) {
    const b1 = f.b1;
    out.push('### B1: one instance', '');
    out.push('Our runner, the run nearest the median; each line is the time since the runner was spawned, when it printed that progress line:', '');
    out.push('| at | runner progress |', '|---:|---|');
    for (const t of b1.ours) out.push(`| ${fmtMs(t.at)} | ${t.label} |`);
    out.push('', "The baseline's steps (medians; each `ssh`/`scp`/`nix copy` is a new SSH connection):", '', '| step | time |', '|---|---:|');
    for (const [step, ms] of Object.entries(b1.baselineSteps)) out.push(`| ${step} | ${fmtMs(ms)} |`);
    out.push('', 'Parts, each measured alone (medians; "remote:" timed on the host, without SSH):', '', '| part | time |', '|---|---:|');
    for (const [name, ms] of Object.entries(b1.parts)) out.push(`| ${name} | ${fmtMs(ms)} |`);
    out.push(
      '',
      `The two processes a one-instance run starts here, each alone until it refuses to go on (medians of 5): the instance's process (the Go remote-runner) ${fmtMs(b1.starts.runner)}; ` +
        `the run's controller (node and its bundle), which the first instance of every run starts, ${fmtMs(b1.starts.controller)}.`,
      '',
      'A change measured on the same code (ssh2 on lab-h1)' +
        (nagleFixed(b1) ? '. The build measured here already connects with TCP_NODELAY, so those rows agree:' : ':'),
      '',
      '| | now | changed | change |',
      '|---|---:|---:|---|',
      `| ssh -G + openSsh connect | ${fmtMs(b1.noDelay.now.connect)} | ${fmtMs(b1.noDelay.noDelay.connect)} | TCP_NODELAY on the SSH socket |`,
      `| exec round trip (\`run('true')\`) on an open connection | ${fmtMs(b1.noDelay.now.roundTrip)} | ${fmtMs(b1.noDelay.noDelay.roundTrip)} | TCP_NODELAY on the SSH socket |`,
      `| forwardIn on an open connection | ${fmtMs(b1.noDelay.now.forward)} | ${fmtMs(b1.noDelay.noDelay.forward)} | TCP_NODELAY on the SSH socket |`,
      ...(nagleFixed(b1)
        ? []
        : [`| whole B1 run of ours (median of ${b1.noDelayRuns.now.length}, alternating) | ${fmtMs(median(b1.noDelayRuns.now))} | ${fmtMs(median(b1.noDelayRuns.noDelay))} | TCP_NODELAY preloaded into the runner (\`NODE_OPTIONS=--import=data:…\`) |`]),
      '',
      "The runner's first remote steps in a fresh node process (the bench's copy of them, bundled; medians of 3):",
      '',
      '| step | time |',
      '|---|---:|',
      ...Object.entries(b1.cold).map(([step, ms]) => `| ${step} | ${fmtMs(ms)} |`),
      '',
    );
  }
  if (f.b2) {
    const b2 = f.b2;
    out.push('### B2: fan-out', '');
    out.push('Per-instance medians. Ours from tg-run\'s summary (copy is the wait for the once-per-host copy, so every instance on a host shows it); the baseline from its step log:', '');
    out.push('| ours | time | baseline | time |', '|---|---:|---|---:|');
    const o = Object.entries(b2.ours);
    const b = Object.entries(b2.baseline);
    for (let i = 0; i < Math.max(o.length, b.length); i++) {
      out.push(`| ${o[i]?.[0] ?? ''} | ${o[i] ? fmtMs(o[i]![1]) : ''} | ${b[i]?.[0] ?? ''} | ${b[i] ? fmtMs(b[i]![1]) : ''} |`);
    }
    const busy = (xs: number[]) => median(xs);
    out.push(
      '',
      `CPU of the whole machine (lab hosts included) during a run: ours busy ${busy(b2.cpu.ours).toFixed(0)} of ${busy(b2.cpu.capacityS.ours).toFixed(0)} CPU-seconds (${pct(busy(b2.cpu.ours), busy(b2.cpu.capacityS.ours))}), ` +
        `baseline ${busy(b2.cpu.baseline).toFixed(0)} of ${busy(b2.cpu.capacityS.baseline).toFixed(0)} (${pct(busy(b2.cpu.baseline), busy(b2.cpu.capacityS.baseline))}).`,
      '',
      ...b2KindsTable(b2),
    );
  }
  if (f.b3) {
    out.push('### B3: our pull', '', '| case | connect (ssh -G + ssh2) | first tar byte | total |', '|---|---:|---:|---:|');
    for (const [id, p] of Object.entries(f.b3)) out.push(`| ${id} | ${fmtMs(p.connectMs)} | ${fmtMs(p.firstByteMs)} | ${fmtMs(p.totalMs)} |`);
    if (f.b3Local) {
      const v = f.b3Variants;
      out.push(
        '',
        `Without SSH, on this machine, for the same ${f.b3Local.files} small files (a ${(f.b3Local.tarBytes / 1e6).toFixed(1)} MB tar as the agent writes it; medians of 3):`,
        '',
        '| | create the tar | extract it |',
        '|---|---:|---:|',
        `| ours (\`remote-agent pack\` into a file, a child process; \`extractOutputs\` in this process) | ${fmtMs(f.b3Local.packMs)} | ${fmtMs(f.b3Local.extractMs)} |`,
        `| GNU tar (\`tar -cf\` into a file, \`tar -xf\`; a child process each) | ${fmtMs(f.b3Local.gnuCreateMs)} | ${fmtMs(f.b3Local.gnuExtractMs)} |`,
        `| \`extractOutputs\` with synchronous fs calls (the sketch \`scripts/bench/sync-extract.ts\`, in this process) | — | ${fmtMs(f.b3Local.syncExtractMs)} |`,
        ...(v?.syncExtract?.length
          ? [
              '',
              `Whole pulls of the small files from the host (medians of ${v.now.length}, the two alternating): ours ${fmtMs(median(v.now))}; ` +
                `with the extract sketch here in place of \`extractOutputs\` ${fmtMs(median(v.syncExtract))}.`,
            ]
          : []),
      );
    }
    out.push('');
  }
  if (f.b5) {
    const c = f.b5;
    out.push(
      '### B5: the services\' CPU time',
      '',
      'User + system CPU of each service process per phase (medians), next to the wall times above; the load script shares the two cores with the service under test.',
      '',
      '| phase | Go | ours |',
      '|---|---:|---:|',
      `| barrier (connect, signal_entry, barrier) | ${fmtMs(median(c.barrier.go))} | ${fmtMs(median(c.barrier.ours))} |`,
      `| pub/sub | ${fmtMs(median(c.pubsub.go))} | ${fmtMs(median(c.pubsub.ours))} |`,
      '',
    );
  }
  if (f.b4) {
    out.push('### B4: each stage of the copy alone', '', '| stage | throughput |', '|---|---:|');
    for (const [name, rate] of Object.entries(f.b4.stages)) out.push(`| ${name} | ${rate.toFixed(0)} MB/s |`);
    out.push('', `Ours with the path already on the host (ssh -G, connect, list the closure, ask the host; nothing sent): ${fmtMs(f.b4.fixedMs)}.`, '');
  }
  void rows;
  return out;
}

function gapsSection(rows: Row[], f: Findings, machine: Machine): string[] {
  const missed = rows.filter((r) => !met(r));
  const out = ['## Goals out of reach', ''];
  if (missed.length === 0) return [...out, 'None: every goal is met.', ''];
  for (const row of missed) {
    const base = median(row.baseline);
    const ours = median(row.ours);
    out.push(`### ${row.id}: ${fmtRatio(ratioOf(row))}, goal ${row.goal.op === '<=' ? '≤' : '≥'} ${row.goal.value}`, '');
    const text = gapText(row, f, base, ours, rows, machine);
    out.push(...text, '');
  }
  return out;
}

function gapText(row: Row, f: Findings, base: number, ours: number, rows: Row[], machine: Machine): string[] {
  switch (row.id) {
    case 'B1':
      return f.b1 ? b1Gap(f.b1, base, ours) : [];
    case 'B2':
      return f.b2 ? b2Gap(f.b2, { ...(f.closures ? { closures: f.closures } : {}), ...(sshStream(f) ? { sshStreamMBs: sshStream(f)! } : {}) }, base, ours, machine) : [];
    case 'B3 small files':
    case 'B3 big file':
      return b3Gap(row, f, base, ours);
    case 'B4 vs ssh':
    case 'B4 vs nix copy':
      return b4Gap(row, f, byId(rows, 'B4 vs ssh'));
    case 'B5 barrier':
    case 'B5 pub/sub':
      return b5Gap(row, f, base, ours);
    case "B5'":
      return f.b5p ? b5pGap(row, f.b5p, machine) : [];
    case 'B6 tg-run':
    case 'B6 remote-runner':
    case 'B7':
      return scaleGap(row, f.b6, f.b7, machine);
    case "B4'":
    case 'B8':
    case 'B9':
      return networkGap(row, f);
    default:
      return [`Ours ${fmtMs(ours)} against ${fmtMs(base)}.`];
  }
}

// One SSH stream's rate alone (B4's `OpenSSH cat` stage), in MB/s.
function sshStream(f: Findings): number | undefined {
  const stages = f.b4?.stages ?? {};
  const key = Object.keys(stages).find((k) => k.startsWith('OpenSSH cat'));
  return key ? stages[key] : undefined;
}

function b1Gap(b1: B1Profile, base: number, ours: number): string[] {
  const at = (phase: string): number | undefined => b1.ours.find((t) => t.label.startsWith(`${phase}:`))?.at;
  const chosen = at('chosen');
  const copied = at('copy');
  const ran = at('run');
  const app = appAlone(b1);
  const sshTrue = part(b1, 'OpenSSH: ssh host true');
  const agent = part(b1, 'remote: remote-agent start');
  const nd = b1.noDelay;
  const fixed = nagleFixed(b1);
  const ndRun = median(b1.noDelayRuns.noDelay);
  const nowRun = median(b1.noDelayRuns.now);
  const coldTotal = Object.values(b1.cold).reduce((a, b) => a + b, 0);
  const target = base * 0.5;
  const { runner, controller } = b1.starts;
  const floor = nd.noDelay.connect + (agent ?? 0) + (app ?? 0);
  const runPhase = copied !== undefined && ran !== undefined ? ran - copied : undefined;
  const out = [
    `Ours takes ${fmtMs(ours)}, the baseline ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. ` +
      `The baseline is five OpenSSH connections (${ms0(sshTrue)} each for \`ssh host true\`) around one run of the app (${ms0(app)} on its own). ` +
      `Ours is the instance's process here, the Go remote-runner (${fmtMs(runner)} to start), which, as the first instance of its run, starts the run's controller (node and its bundle, ${fmtMs(controller)} to start alone); ` +
      'the controller makes one ssh2 connection and starts two processes on the host: the agent, a static Go binary, and the app, node on one bundle. Where its time goes (timeline above):',
    '',
    `- **${ms0(chosen)} until a host is chosen**: the Go process's start, the controller's start, its connection to the run's sync service and the sign-up for a sequence number (\`choose-server\`); the controller's start is most of it.`,
    `- **${chosen !== undefined && copied !== undefined ? fmtMs(copied - chosen) : 'n/a'} to connect and learn that the closure is present.** ` +
      `In a fresh process these steps take ${fmtMs(coldTotal)} (${Object.entries(b1.cold).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')}); ` +
      `warm, in this process, ssh -G + connect takes ${fmtMs(nd.now.connect)}: the handshake's crypto and ssh2's code run cold in a controller that has just started.`,
    `- **${ms0(runPhase)} to forward the sync service, start the agent and run the app** (measured alone: the agent's start ${ms0(agent)}, the app's whole run ${ms0(app)})` +
      (fixed
        ? '.'
        : `; the rest is waiting on the SSH socket: openSsh connects without TCP_NODELAY, so every small request that waits for an answer sits out the peer's delayed ACK ` +
          `(an exec round trip takes ${fmtMs(nd.now.roundTrip)}, ${fmtMs(nd.noDelay.roundTrip)} with TCP_NODELAY; forwardIn ${fmtMs(nd.now.forward)} against ${fmtMs(nd.noDelay.forward)}), and the app's own sync-service requests travel through that socket too.`),
    '',
  ];
  if (!fixed) {
    out.push(`Measured end to end, TCP_NODELAY alone takes a whole run of ours from ${fmtMs(nowRun)} to ${fmtMs(ndRun)} (ratio about ${fmtRatio(ndRun / base)}). `, '');
  }
  const withoutStart = ours - controller;
  out.push(
    `A run of one instance pays the controller's start in full; in a run of many it is paid once (B2, B6). Without it, ours would take about ${fmtMs(withoutStart)} (a ratio near ${fmtRatio(withoutStart / base)}); ` +
      `the floor of this structure is one connection, the agent and the app (${fmtMs(floor)}). ` +
      `So what stands between ours and the goal is the controller's start: ${fmtMs(controller)}, most of it node loading and compiling the bundle (node running nothing starts in ${ms0(part(b1, 'remote: node -e'))} on a host). ` +
      'What would shorten it: a smaller bundle at the start (the controller loads the SSH, closure and outputs modules before its socket listens; it could listen first and load them while the instance signs up), ' +
      "or the bundle's compiled code kept between starts (V8's code cache: node 22's `module.enableCompileCache()`, which node 20 lacks).",
  );
  if (!fixed) {
    out.push(
      '',
      `Also: \`helpers/ssh/session.ts\`, \`openSsh\`: connect with \`net.connect({ host, port, noDelay: true })\`. Expected: −${fmtMs(nowRun - ndRun)} per instance here (B1 end to end), about ${fmtMs(nd.now.roundTrip - nd.noDelay.roundTrip)} off every exec or forward request.`,
    );
  }
  return out;
}

function b3Gap(row: Row, f: Findings, base: number, ours: number): string[] {
  if (row.id === 'B3 big file') {
    return [
      `Ours ${fmtMs(ours)} against scp's ${fmtMs(base)} (${mbps(row, 'ours')} against ${mbps(row, 'baseline')}); the pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. ` +
        'One stream of one file is bounded by the cipher and the copies on each side. Ours adds the tar framing; on the host the agent (Go) reads the file and writes it to sshd, ' +
        "and here every byte passes through node (ssh2's decryption, then extractOutputs' writes), where scp is C at both ends. See B4 for the cipher throughputs.",
    ];
  }
  const local = f.b3Local;
  const p = f.b3?.[row.id];
  const target = base * row.goal.value;
  const out = [
    `Ours takes ${fmtMs(ours)}, scp ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. The transport is not what limits ours: it connects in ${ms0(p?.connectMs)} and the first tar byte arrives at ${ms0(p?.firstByteMs)}.`,
  ];
  if (!local) return out;
  const perFile = (ms: number): string => `${Math.round((ms / local.files) * 1000)} µs`;
  const v = f.b3Variants;
  const now = v?.now.length ? median(v.now) : undefined;
  const sketch = v?.syncExtract?.length ? median(v.syncExtract) : undefined;
  const sum = local.packMs + local.extractMs;
  const packSlow = local.packMs > 1.5 * local.gnuCreateMs;
  const extractOverhead = local.extractMs > 1.5 * local.gnuExtractMs;
  const sketchGains = sketch !== undefined && now !== undefined && sketch < 0.9 * now;
  const overlap = ours < 0.8 * sum ? 'less than their sum: the two overlap' : ours <= sum * 1.25 ? 'about their sum' : 'more than their sum';
  out.push(
    '',
    `What limits it is the work per file (table above). \`remote-agent pack\` takes ${fmtMs(local.packMs)} for these ${local.files} files (${perFile(local.packMs)} a file, its start included)` +
      (packSlow
        ? `, ${fmtRatio(local.packMs / local.gnuCreateMs)} times what GNU tar needs (${fmtMs(local.gnuCreateMs)}). `
        : ` where GNU tar needs ${fmtMs(local.gnuCreateMs)}: the agent packs at the file system's pace. `) +
      (extractOverhead
        ? `extractOutputs takes ${fmtMs(local.extractMs)} (${perFile(local.extractMs)} a file) where GNU tar needs ${fmtMs(local.gnuExtractMs)}: it awaits one asynchronous fs call per step of every file (open, fchmod, write, close), each a round trip through libuv's thread pool and a promise; ` +
          `the sketch that makes the same calls synchronously takes ${fmtMs(local.syncExtractMs)}. `
        : `extractOutputs takes ${fmtMs(local.extractMs)}, about what GNU tar needs (${fmtMs(local.gnuExtractMs)}) and the synchronous sketch (${fmtMs(local.syncExtractMs)}): in this run the file system set that pace, creating ${local.files} files on a shared disk, which scp pays as well. `) +
      `Packing on the host and extracting here could overlap; ours takes ${overlap} (${fmtMs(sum)} alone, ${fmtMs(ours)} in the pull), both sides running on the same two cores, which also run the cipher at each end.` +
      (sketch !== undefined && now !== undefined
        ? ` A whole pull with the extract sketch took ${fmtMs(sketch)} against ${fmtMs(now)} for ours in the same rounds, a ratio near ${fmtRatio(sketch / base)} against this run's scp.`
        : ''),
    '',
    sketchGains
      ? 'Change: `helpers/outputs/tar.ts`. In `Placer.file`, collect the chunks of an entry up to, say, 1 MiB and write it with `openSync` (same flags), `writeSync` and `closeSync` (larger files keep the streaming path), ' +
          'and skip the `fchmod` when `open` already applied the mode (`(mode & ~umask) === mode`); in `Placer.directory`, the `lstat`/`mkdir` pair can be synchronous too. ' +
          'The checks stay as they are (names, O_EXCL|O_NOFOLLOW, parents that are real directories); only the waiting goes. ' +
          `Expected: about the sketch's gain, ${Math.round((1 - sketch / now) * 100)}% off a pull here (${fmtMs(sketch)} against ${fmtMs(now)} in the same rounds); ` +
          'what is left is the packing on the host, the file system creating the files (as for scp) and the cipher.'
      : `Synchronous writes in extractOutputs did not pay off in whole pulls in this run: the extract sketch ${sketch !== undefined && now !== undefined ? `saved under 10% of a whole pull (${fmtMs(sketch)} against ${fmtMs(now)})` : 'was not measured in whole pulls'}. ` +
          'What is left is the packing on the host, the file system creating the files (as for scp) and the cipher.',
  );
  return out;
}

function b4Gap(row: Row, f: Findings, raw: Row | undefined): string[] {
  const parts = f.b4?.stages ?? {};
  const stage = (prefix: string): string => {
    const key = Object.keys(parts).find((k) => k.startsWith(prefix));
    return key ? `${parts[key]!.toFixed(0)} MB/s` : 'n/a';
  };
  const oursRate = row.bytes ? row.bytes / 1e6 / (median(row.ours) / 1000) : Number.NaN;
  const otherRate = row.bytes ? row.bytes / 1e6 / (median(row.baseline) / 1000) : Number.NaN;
  const stages =
    `Alone, the stages run at: local export ${stage('local nix-store --export')}, ssh2 ${stage('ssh2')}, OpenSSH ${stage('OpenSSH cat')} (chacha20-poly1305) or ${stage('OpenSSH -c aes128-gcm')} (aes128-gcm), remote import ${stage('remote nix-store --import')}. ` +
    'In the copy they run at once, export and ssh2 here, sshd and import on the host, all on the same two cores.';
  if (row.id === 'B4 vs ssh') {
    return [
      `Ours moves ${oursRate.toFixed(0)} MB/s against ${otherRate.toFixed(0)} MB/s for \`ssh host 'cat > /dev/null'\` (both whole processes, connection included). ${stages} ` +
        'The raw stream only encrypts and decrypts; ours also hashes on export and hashes and writes on import, on the same cores. ' +
        `Of ours' ${fmtMs(median(row.ours))}, ${ms0(f.b4?.fixedMs)} do not depend on the size (ours with nothing to send).`,
    ];
  }
  const rawRate = raw?.bytes ? raw.bytes / 1e6 / (median(raw.baseline) / 1000) : Number.NaN;
  const factor = (2 * otherRate) / rawRate;
  const fixed = f.b4?.fixedMs;
  const streamRate = row.bytes && fixed !== undefined ? row.bytes / 1e6 / ((median(row.ours) - fixed) / 1000) : Number.NaN;
  return [
    `Ours moves ${oursRate.toFixed(0)} MB/s, \`nix copy --to ssh://\` ${otherRate.toFixed(0)} MB/s. Twice nix copy would be ${(2 * otherRate).toFixed(0)} MB/s, ${Number.isFinite(factor) ? `${factor.toFixed(1)} times` : 'more than'} what the raw SSH stream moves here. ` +
      'Nothing that goes through one SSH stream beats the stream, and on this machine nix copy already runs close to it: the gap the issue saw (nix copy at 125 MB/s where raw SSH moved 600–800 MB/s) does not exist on two cores, where the cipher itself is the limit. ' +
      stages,
    '',
    'What would close it where the gap does exist (more cores, a fast link): ours already streams export into import over one channel, so the rest is more than one stream and fewer bytes: ' +
      'split the missing paths over several exec channels or connections (one per core, each its own `nix-store --export` into its own `nix-store --import`), so encryption and hashing use every core; ' +
      'and compress the stream (zstd at a low level on both ends) for real closures, which shrink two to four times (random data, as here, does not). ' +
      'On this machine neither helps: every core is already busy with the four stages.',
    '',
    `Of ours' ${fmtMs(median(row.ours))}, ${ms0(fixed)} do not depend on the size (connect, list, ask the host: the time it takes with nothing to send), so the stream itself runs at about ${Number.isFinite(streamRate) ? streamRate.toFixed(0) : 'n/a'} MB/s` +
      (streamRate < otherRate
        ? `, below nix copy's ${otherRate.toFixed(0)} MB/s: in ours every byte also passes through node (a pipe read, ssh2's packets, OpenSSL through node's crypto), CPU that the other stages need on two cores, where nix copy hands its stream from C++ straight to the OpenSSH client. ` +
          'Streaming the export through an OpenSSH client process instead (`nix-store --export … | ssh host nix-store --import`, with the same pinned known_hosts) would take node out of the byte path.'
        : '.'),
  ];
}

function b5Gap(row: Row, f: Findings, base: number, ours: number): string[] {
  const cpu = f.b5;
  const phase = row.id === 'B5 barrier' ? 'barrier' : 'pubsub';
  const go = cpu ? median(cpu[phase].go) : Number.NaN;
  const our = cpu ? median(cpu[phase].ours) : Number.NaN;
  return [
    `Ours ${fmtMs(ours)} against Go's ${fmtMs(base)}; the pairs' ratios: ${row.ratios.map(fmtRatio).join(', ')}. The services used ${fmtMs(our)} (ours) and ${fmtMs(go)} (Go) of CPU in this phase. ` +
      (our < go * 0.9
        ? "Ours does less work; it loses on parallelism: one node thread accepts and upgrades the connections one after another, where Go's service spreads them over both cores, and the load script in this process competes for the same two cores. "
        : our <= go * 1.1
          ? "Both do about the same work; ours does it on one node thread, one connection after another, where Go's service spreads it over both cores (and the load script in this process competes for the same two cores). "
          : "Ours spends more CPU here: each of the 1,000 connections costs an HTTP upgrade in node's single thread. ") +
      "The phase is short, so the machine's other work moves it a lot. What would close it: accept and upgrade connections on more than one thread " +
      '(workers sharing the listening socket that hand the upgraded sockets, or just their frames, to the one thread that keeps the state).',
  ];
}

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

function b5pMethod(p: ScaleProfile): string {
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

function b5pSection(p: ScaleProfile, machine: Machine): string[] {
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

function b5pGap(row: Row, p: ScaleProfile, machine: Machine): string[] {
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
