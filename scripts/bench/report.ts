// BENCHMARKS.md: the machine, the method, the results and what the profiles show.
import type { Plan } from '../bench.ts';
import type { B1Profile } from './b1-overhead.ts';
import type { B2Profile } from './b2-fanout.ts';
import type { LocalTarProfile, PullProfile, PullVariants } from './b3-outputs.ts';
import type { CopyProfile } from './b4-copy.ts';
import type { ClosureSize } from './lab.ts';
import type { SyncCpu } from './b5-sync.ts';
import { met, ratioOf, type Row } from './compare.ts';
import type { Machine } from './machine.ts';
import { markdownTable, samplesTable } from './table.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

export interface Findings {
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
      'Every figure below is a whole-process wall time on lab hosts (`scripts/lab`): network namespaces with their own `/nix` and sshd, ' +
      'on this one machine, so the "network" is a veth pair and every process of both sides shares the same cores.',
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
      'each is the median of the per-pair ratios, so it need not equal the ratio of the two medians.',
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
  out.push(...gapsSection(rows, findings));
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
      'Ours is `<runner out>/bin/remote-runner` started with the exact local:exec environment (as tg-run builds it) and an in-process sync service; ' +
      'the baseline gets the same environment and the same sync service. Both must exit 0 with outputs.',
    `- **B2** (${plan.b2Pairs} pair${plan.b2Pairs === 1 ? '' : 's'}): ${plan.b2Instances} instances of \`ok\` on 4 hosts, round robin, started by \`tg-run single --use-build\` for both sides ` +
      '(ours: the runner\'s out path; baseline: an artifact whose `bin/remote-runner` runs `baseline.sh`). ' +
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
    '- `npm run bench -- --quick` runs fewer pairs and smaller sizes and prints the table without writing this file (`--write` writes it anyway).',
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
      'Two changes measured on the same code (ssh2 on lab-h1; the runner started with an empty environment, so it loads everything and stops)' +
        (nagleFixed(b1) ? '. The build measured here already connects with TCP_NODELAY, so those rows agree:' : ':'),
      '',
      '| | now | changed | change |',
      '|---|---:|---:|---|',
      `| ssh -G + openSsh connect | ${fmtMs(b1.noDelay.now.connect)} | ${fmtMs(b1.noDelay.noDelay.connect)} | TCP_NODELAY on the SSH socket |`,
      `| exec round trip (\`run('true')\`) on an open connection | ${fmtMs(b1.noDelay.now.roundTrip)} | ${fmtMs(b1.noDelay.noDelay.roundTrip)} | TCP_NODELAY on the SSH socket |`,
      `| forwardIn on an open connection | ${fmtMs(b1.noDelay.now.forward)} | ${fmtMs(b1.noDelay.noDelay.forward)} | TCP_NODELAY on the SSH socket |`,
      `| remote-runner start | ${fmtMs(b1.bundle.packaged)} | ${fmtMs(b1.bundle.bundled)} | dependencies bundled into the bin |`,
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

function gapsSection(rows: Row[], f: Findings): string[] {
  const missed = rows.filter((r) => !met(r));
  const out = ['## Goals out of reach', ''];
  if (missed.length === 0) return [...out, 'None: every goal is met.', ''];
  for (const row of missed) {
    const base = median(row.baseline);
    const ours = median(row.ours);
    out.push(`### ${row.id}: ${fmtRatio(ratioOf(row))}, goal ${row.goal.op === '<=' ? '≤' : '≥'} ${row.goal.value}`, '');
    const text = gapText(row, f, base, ours, rows);
    out.push(...text, '');
  }
  return out;
}

function gapText(row: Row, f: Findings, base: number, ours: number, rows: Row[]): string[] {
  switch (row.id) {
    case 'B1':
      return f.b1 ? b1Gap(f.b1, base, ours) : [];
    case 'B2':
      return f.b2 ? b2Gap(f, base, ours) : [];
    case 'B3 small files':
    case 'B3 big file':
      return b3Gap(row, f, base, ours);
    case 'B4 vs ssh':
    case 'B4 vs nix copy':
      return b4Gap(row, f, byId(rows, 'B4 vs ssh'));
    case 'B5 barrier':
    case 'B5 pub/sub':
      return b5Gap(row, f, base, ours);
    default:
      return [`Ours ${fmtMs(ours)} against ${fmtMs(base)}.`];
  }
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
  const saveBundle = b1.bundle.packaged - b1.bundle.bundled;
  const coldTotal = Object.values(b1.cold).reduce((a, b) => a + b, 0);
  const target = base * 0.5;
  const withBundle = Math.min(ndRun, nowRun, ours) - saveBundle;
  const floor = b1.bundle.bundled + nd.noDelay.connect + (agent ?? 0) + (app ?? 0);
  const runPhase = copied !== undefined && ran !== undefined ? ran - copied : undefined;
  const out = [
    `Ours takes ${fmtMs(ours)}, the baseline ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. ` +
      `The baseline is five OpenSSH connections (${ms0(sshTrue)} each for \`ssh host true\`) around one run of the app (${ms0(app)} on its own). ` +
      'Ours is one node process started here (the runner), one ssh2 connection, and two processes on the host: the agent, a static Go binary, and the app, node on one bundle. Where its time goes (timeline above):',
    '',
    `- **${ms0(chosen)} until a host is chosen**, mostly the runner's own start (measured alone, ${fmtMs(b1.bundle.packaged)} to start node and load its modules). ` +
      'The package bundles our code but leaves the dependencies (ssh2, zod, ws, execa, tar-stream) in node_modules, where node resolves and compiles them file by file; ' +
      `the same entry bundled with its dependencies starts in ${fmtMs(b1.bundle.bundled)} (−${fmtMs(saveBundle)}).`,
    `- **${chosen !== undefined && copied !== undefined ? fmtMs(copied - chosen) : 'n/a'} to connect and learn that the closure is present.** ` +
      `In a fresh process these steps take ${fmtMs(coldTotal)} (${Object.entries(b1.cold).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ')}); ` +
      `warm, in this process, ssh -G + connect takes ${fmtMs(nd.now.connect)}: the handshake's crypto and ssh2's code run cold in every runner.`,
    `- **${ms0(runPhase)} to forward the sync service, start the agent and run the app** (measured alone: the agent's start ${ms0(agent)}, the app's whole run ${ms0(app)})` +
      (fixed
        ? '.'
        : `; the rest is waiting on the SSH socket: openSsh connects without TCP_NODELAY, so every small request that waits for an answer sits out the peer's delayed ACK ` +
          `(an exec round trip takes ${fmtMs(nd.now.roundTrip)}, ${fmtMs(nd.noDelay.roundTrip)} with TCP_NODELAY; forwardIn ${fmtMs(nd.now.forward)} against ${fmtMs(nd.noDelay.forward)}), and the app's own sync-service requests travel through that socket too.`),
    '',
  ];
  if (!fixed) {
    out.push(`Measured end to end, TCP_NODELAY alone takes a whole run of ours from ${fmtMs(nowRun)} to ${fmtMs(ndRun)} (ratio about ${fmtRatio(ndRun / base)}). `);
  }
  const within = withBundle <= target;
  out.push(
    `With the runner's dependencies bundled${fixed ? '' : ' as well'} (−${fmtMs(saveBundle)} at its start), ours would come to about ${fmtMs(withBundle)}, a ratio near ${fmtRatio(withBundle / base)}` +
      (within ? `, within the goal's ${fmtMs(target)} in this run, though with the baseline's time, mostly OpenSSH handshakes, moving with the machine's load, not by much. ` : `, still short of the goal's ${fmtMs(target)}. `) +
      (floor < withBundle
        ? `Below that, today's structure has a floor: the app alone and one connection take ${fmtMs((app ?? 0) + nd.noDelay.connect)}, and a bundled runner plus the agent add ${fmtMs(b1.bundle.bundled + (agent ?? 0))} (about ${fmtMs(floor)} in all). `
        : '') +
      `${within ? 'A clear margin' : 'Getting clear of the goal'} needs fewer node starts per instance. The agent is a static binary (its start and exit take ${ms0(agent)} on the host), and the app's node is the plan's own; ` +
      'what is left is the runner, a fresh node process per instance: one long-lived runner per machine that the instances hand their job to would pay module loading and the cold handshake once.',
    '',
    'Changes, in order of gain per line changed:',
    '',
  );
  let n = 1;
  if (!fixed) {
    out.push(
      `${n++}. \`helpers/remote-runner/ssh-session.ts\`, \`openSsh\`: connect with \`net.connect({ host, port, noDelay: true })\` (or \`sock.setNoDelay(true)\` before \`client.connect\`). Expected: −${fmtMs(nowRun - ndRun)} per instance here (B1 end to end), about ${fmtMs(nd.now.roundTrip - nd.noDelay.roundTrip)} off every exec or forward request.`,
    );
  }
  out.push(
    `${n++}. \`nix/bundle.mjs\`: bundle the dependencies too: drop \`packages: 'external'\`, add \`external: ['*.node']\` (ssh2's optional native binding), and a banner defining \`require\` (\`createRequire(import.meta.url)\`), \`__filename\` and \`__dirname\` for the CommonJS dependencies. Expected: −${fmtMs(saveBundle)} at every runner start (the app is one bundle already, and the agent is Go).`,
  );
  return out;
}

function b2Gap(f: Findings, base: number, ours: number): string[] {
  const b2 = f.b2!;
  const b1 = f.b1;
  const cpuOurs = median(b2.cpu.ours);
  const capOurs = median(b2.cpu.capacityS.ours);
  const cpuBase = median(b2.cpu.baseline);
  const capBase = median(b2.cpu.capacityS.baseline);
  const target = base * 0.25;
  const starts = b1 ? `${fmtMs(b1.bundle.packaged)} for a runner, ${ms0(part(b1, 'remote: plan start'))} for the app and ${ms0(part(b1, 'remote: remote-agent start'))} for an agent` : 'see B1';
  const c = f.closures;
  const sent = c
    ? `Ours places the app and the agent once per host (4 × ${mb(c.app.bytes + c.agent.bytes)}); the baseline's sixteen \`nix copy\` runs of the app's closure (${mb(c.app.bytes)}) send it up to sixteen times (up to ${mb(16 * c.app.bytes)}).`
    : "Ours places the app and the agent once per host; the baseline's sixteen `nix copy` runs send the app's closure up to sixteen times.";
  return [
    `Ours takes ${fmtMs(ours)}, the baseline ${fmtMs(base)}; the goal asks for ${fmtMs(target)}. Both runs are CPU-bound: the machine was busy ${cpuOurs.toFixed(0)} of ${capOurs.toFixed(0)} CPU-seconds during ours and ${cpuBase.toFixed(0)} of ${capBase.toFixed(0)} during the baseline. ` +
      'Every lab host shares these two cores, so the wall time is the CPU work divided by two, whatever the network could carry.',
    '',
    `- ${sent} That is where ours wins: the median copy wait is ${ms0(b2.ours.copy)} against ${ms0(b2.baseline.copy)} for the baseline's \`nix copy\` step.`,
    `- Ours starts 16 runners here and, on the hosts, 16 agents and 16 apps: 32 node processes and 16 static binaries (${starts}), where the baseline starts 16 apps; ` +
      `the runners' starts overlap the copy and delay it, and in the run phase (${ms0(b2.ours.run)} per instance) the apps' node starts queue on the same two cores.`,
    '',
    `To reach ${fmtMs(target)} the CPU work has to shrink about ${fmtRatio(cpuOurs / ((target / 1000) * 2))}-fold. Bundling the runner's dependencies (B1) cuts the module loading of its 16 starts (the apps are one bundle already), ` +
      'but the remaining floor is the per-instance process structure: one runner process per instance, each with its own SSH handshake, and one agent per instance. ' +
      'What would close it: tg-run (or a runner shared by all instances of a run on a machine) running the remote runs in one process with one SSH connection per host, and one agent per host starting all of that host\'s apps. ' +
      `Then the CPU left is the copy (export, encryption, import${c ? ` of 4 × ${mb(c.app.bytes + c.agent.bytes)}` : ''}) and the apps themselves. On a machine with more cores than lab hosts, both sides would also run faster in parallel.`,
  ];
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
