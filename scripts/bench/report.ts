// BENCHMARKS.md: the machine, the method, the results and what the profiles show.
import type { Plan } from '../bench.ts';
import { met, ratioOf, type Row } from './compare.ts';
import type { Findings, ReportInput } from './findings.ts';
import type { Machine } from './machine.ts';
import { b1Gap, b3Gap, b4Gap, b5Gap } from './report-gaps.ts';
import { networkGap, networkMethod, networkSections } from './report-network.ts';
import { byId, mbps, nagleFixed, pct, sshStream } from './report-parts.ts';
import { b2Gap, b2KindsTable, scaleGap, scaleMethod, scaleSections } from './report-scale.ts';
import { b5pGap, b5pMethod, b5pSection } from './report-sync-scale.ts';
import { markdownTable, samplesTable } from './table.ts';
import { fmtMs, fmtRatio, median } from './util.ts';

export type { Findings, ReportInput } from './findings.ts';

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
