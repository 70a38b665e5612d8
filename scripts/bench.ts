// npm run bench [-- --quick] [-- --write] [-- --only B1,B4] (B4' and B5' quoted for the shell: --only "B4',B5'")
//
// Whole-process benchmarks on lab hosts: each comparison runs its two sides
// alternately, and the figure is the median of the per-pair ratios. Ends with the
// table of ratios; writes BENCHMARKS.md unless --quick or --only (a part of the
// benchmarks would replace the whole report; --write forces it).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startSyncService } from '../helpers/sync-service/index.ts';
import { benchOverhead } from './bench/b1-overhead.ts';
import { benchFanout } from './bench/b2-fanout.ts';
import { benchOutputs } from './bench/b3-outputs.ts';
import { benchCopy } from './bench/b4-copy.ts';
import { benchRealCopy } from './bench/b4p-closure.ts';
import { benchSync } from './bench/b5-sync.ts';
import { benchSyncScale } from './bench/b5-sync-scale.ts';
import { benchMemory } from './bench/b6-memory.ts';
import { benchThousand } from './bench/b7-thousand.ts';
import { benchFleetCopy } from './bench/b8-fleet.ts';
import { benchSubstitute } from './bench/b9-substitute.ts';
import { prepareGoPlan } from './bench/go-plan.ts';
import type { Row } from './bench/compare.ts';
import { buildRunner, closureSize, labDown, labIsUp, labUp } from './bench/lab.ts';
import { describeMachine } from './bench/machine.ts';
import { renderReport, type Findings, type ReportInput } from './bench/report.ts';
import { textTable } from './bench/table.ts';
import { cleanupTemps, elapsedS, log, repoRoot } from './bench/util.ts';

/** Pairs and sizes of one mode. */
export interface Plan {
  b1Pairs: number;
  b2Pairs: number;
  b2Instances: number;
  b3Pairs: number;
  b3Files: number;
  b3BigBytes: number;
  b4Pairs: number;
  b4Bytes: number;
  b5Pairs: number;
  b5Clients: number;
  b5Publishers: number;
  b5Subscribers: number;
  b5Messages: number;
  b5pPairs: number;
  b5pClients: number;
  b5pPublishers: number;
  /** Bound of one run's pub/sub in B5', in ms. */
  b5pBoundMs: number;
  b6Instances: number;
  /** Runs of each path in B6. */
  b6Runs: number;
  /** How long each instance of B6 and B7 sleeps: long enough for every one of them to be alive at once. */
  b6SleepSecs: number;
  /** B6 also runs tg-run as the runner on warm hosts, to show what the copies leave in its memory. */
  b6Warm: boolean;
  /** Fresh lab hosts for every run of B6 and B7 (quick: the hosts as the run before left them). */
  b6Fresh: boolean;
  b7Instances: number;
  b7SleepSecs: number;
  /** B7's run is stopped after this long, in ms. */
  b7BoundMs: number;
  b4pPairs: number;
  b8Pairs: number;
  /** Hosts B8 places on at once (the lab has at most 8). */
  b8Hosts: number;
  b9Pairs: number;
  /** Bytes of each of B9's 10 store paths of random data. */
  b9PathBytes: number;
}

const MB = 1e6;
const full: Plan = {
  b1Pairs: 5, b2Pairs: 2, b2Instances: 16, b3Pairs: 3, b3Files: 5000, b3BigBytes: 200 * MB,
  b4Pairs: 3, b4Bytes: 200 * MB, b5Pairs: 5, b5Clients: 1000, b5Publishers: 10, b5Subscribers: 10, b5Messages: 1000,
  b5pPairs: 5, b5pClients: 10_000, b5pPublishers: 100, b5pBoundMs: 600_000,
  b6Instances: 256, b6Runs: 2, b6SleepSecs: 15, b6Warm: true, b6Fresh: true, b7Instances: 1000, b7SleepSecs: 30, b7BoundMs: 600_000,
  b4pPairs: 3, b8Pairs: 2, b8Hosts: 8, b9Pairs: 3, b9PathBytes: 10 * MB,
};
const quick: Plan = {
  b1Pairs: 2, b2Pairs: 1, b2Instances: 16, b3Pairs: 1, b3Files: 1000, b3BigBytes: 50 * MB,
  b4Pairs: 1, b4Bytes: 50 * MB, b5Pairs: 1, b5Clients: 1000, b5Publishers: 10, b5Subscribers: 10, b5Messages: 1000,
  b5pPairs: 2, b5pClients: 1000, b5pPublishers: 100, b5pBoundMs: 120_000,
  b6Instances: 32, b6Runs: 1, b6SleepSecs: 4, b6Warm: false, b6Fresh: false, b7Instances: 64, b7SleepSecs: 5, b7BoundMs: 120_000,
  // B9's cache add compresses its half with xz, about 1.5 MB/s of random data: small paths keep it short.
  b4pPairs: 1, b8Pairs: 1, b8Hosts: 4, b9Pairs: 1, b9PathBytes: 2 * MB,
};

const HOSTS = 4;
const ALL = ['B1', 'B2', 'B3', 'B4', "B4'", 'B5', "B5'", 'B6', 'B7', 'B8', 'B9'];
// The hosts of the shaped-link benchmarks: B4' on the first, B9 on the second and third.
const NETWORK_HOSTS = { realCopy: 'lab-h1', substituter: 'lab-h2', none: 'lab-h3' };

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, write: { type: 'boolean' }, dirty: { type: 'boolean' }, only: { type: 'string' }, results: { type: 'string' }, render: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench [-- --quick] [-- --write] [-- --dirty] [-- --only ${ALL.join(',')}] [-- --results <file.json>]\n` +
        '       (quote B4\' and B5\' for the shell: --only "B4\',B5\'")\n' +
        '       (builds and measures the committed HEAD; --dirty: the working tree as it is)\n' +
        '       (writes BENCHMARKS.md after a full run of every benchmark; --write: after any run)\n' +
        '       npm run bench -- --render <file.json>   (write BENCHMARKS.md again from saved results)\n',
    );
    return 0;
  }
  if (values.render) {
    const saved = JSON.parse(await readFile(values.render, 'utf8')) as ReportInput;
    await writeFile(join(repoRoot, 'BENCHMARKS.md'), renderReport(saved));
    process.stdout.write(`\n${textTable(saved.rows)}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('the benchmarks use lab hosts (scripts/lab), which need root');
  const mode = values.quick ? 'quick' : 'full';
  const plan = values.quick ? quick : full;
  const only = new Set((values.only ?? ALL.join(',')).split(',').map((s) => s.trim().toUpperCase()));
  const unknown = [...only].filter((id) => !ALL.includes(id));
  if (unknown.length > 0) throw new Error(`--only: expected some of ${ALL.join(',')}, got ${unknown.join(',')}`);
  const machine = await describeMachine();
  log(`${mode} run on ${machine.nproc} cores, ${machine.memoryGiB} GiB: ${[...only].join(', ')}`);

  const rows: Row[] = [];
  const findings: Findings = {};
  let source = 'not built';
  const stopOnSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: taking the lab down`);
    void Promise.allSettled([labDown(), cleanupTemps()]).finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);

  try {
    log('building the runner (offline Nix build)');
    const build = await buildRunner({ dirty: values.dirty ?? false });
    source = build.source;
    findings.closures = { app: await closureSize([build.plan]), agent: await closureSize([build.agent]) };
    if (only.has('B5')) {
      const size = { clients: plan.b5Clients, publishers: plan.b5Publishers, subscribers: plan.b5Subscribers, messagesPerPublisher: plan.b5Messages };
      const b5 = await benchSync(`${build.tools}/bin/sync-service`, plan.b5Pairs, size);
      rows.push(...b5.rows);
      findings.b5 = b5.cpu;
    }
    if (only.has("B5'")) {
      const size = { clients: plan.b5pClients, publishers: plan.b5pPublishers, pubsubBoundMs: plan.b5pBoundMs };
      const b5p = await benchSyncScale(`${build.tools}/bin/sync-service`, plan.b5pPairs, size);
      rows.push(b5p.row);
      findings.b5p = b5p.profile;
    }
    if (['B1', 'B3', 'B4'].some((b) => only.has(b))) {
      log('taking the lab (waits while another user holds it)');
      findings.labUpMs = await labUp(HOSTS);
      const sync = await startSyncService({ host: '127.0.0.1', port: 0, log: () => {} });
      try {
        if (only.has('B1')) {
          const b1 = await benchOverhead(build, sync.port, plan.b1Pairs, 'lab-h1');
          rows.push(b1.row);
          findings.b1 = b1.profile;
        }
        if (only.has('B3')) {
          const b3 = await benchOutputs(build, 'lab-h2', plan.b3Pairs, { files: plan.b3Files, bigBytes: plan.b3BigBytes });
          rows.push(...b3.rows);
          findings.b3 = b3.profiles;
          findings.b3Local = b3.local;
          findings.b3Variants = b3.variants;
        }
        if (only.has('B4')) {
          const b4 = await benchCopy('lab-h3', plan.b4Pairs, plan.b4Bytes);
          rows.push(...b4.rows);
          findings.b4 = b4.profile;
        }
      } finally {
        await Promise.race([sync.close(), sleep(5_000)]);
      }
    }
    if (only.has('B2')) {
      const b2 = await benchFanout(build, plan.b2Pairs, plan.b2Instances, HOSTS);
      rows.push(b2.row);
      findings.b2 = b2.profile;
    }
    if (only.has('B6') || only.has('B7')) {
      log('building examples/go-plan (exec:go needs no build here; its Nix artifact does)');
      const goPlan = await prepareGoPlan(build);
      const hosts = Array.from({ length: HOSTS }, (_, i) => `lab-h${i + 1}`);
      if (!plan.b6Fresh && !labIsUp()) await labUp(HOSTS);
      if (only.has('B6')) {
        const b6 = await benchMemory(build, goPlan, { instances: plan.b6Instances, runs: plan.b6Runs, sleepSecs: plan.b6SleepSecs, warm: plan.b6Warm, fresh: plan.b6Fresh, hosts });
        rows.push(...b6.rows);
        findings.b6 = b6.profile;
      }
      if (only.has('B7')) {
        const b7 = await benchThousand(build, goPlan, { instances: plan.b7Instances, sleepSecs: plan.b7SleepSecs, boundMs: plan.b7BoundMs, fresh: plan.b6Fresh, hosts });
        rows.push(b7.row);
        findings.b7 = b7.profile;
      }
    }
    if (["B4'", 'B8', 'B9'].some((b) => only.has(b))) {
      log('taking the lab for the shaped links (waits while another user holds it)');
      await labUp(Math.max(only.has('B8') ? plan.b8Hosts : 0, 3));
      if (only.has("B4'")) {
        const b4p = await benchRealCopy(build, NETWORK_HOSTS.realCopy, plan.b4pPairs);
        rows.push(b4p.row);
        findings.b4p = b4p.profile;
      }
      if (only.has('B9')) {
        const b9 = await benchSubstitute({ pathBytes: plan.b9PathBytes, pairs: plan.b9Pairs, hosts: { substituter: NETWORK_HOSTS.substituter, none: NETWORK_HOSTS.none } });
        rows.push(b9.row);
        findings.b9 = b9.profile;
      }
      if (only.has('B8')) {
        const b8 = await benchFleetCopy(build, plan.b8Hosts, plan.b8Pairs);
        rows.push(b8.row);
        findings.b8 = b8.profile;
      }
    }
  } finally {
    if (labIsUp()) await labDown();
    await cleanupTemps();
  }

  const benchOf = (row: Row) => ALL.indexOf(row.id.split(' ')[0]!);
  rows.sort((a, b) => benchOf(a) - benchOf(b));
  const seconds = elapsedS();
  const report: ReportInput = { machine, mode, plan, rows, findings, seconds, date: new Date().toISOString().slice(0, 10), source };
  if (values.results) await writeFile(values.results, JSON.stringify(report, null, 1));
  if ((!values.quick && !values.only) || values.write) {
    const file = join(repoRoot, 'BENCHMARKS.md');
    await writeFile(file, renderReport(report));
    log(`wrote ${file}`);
  }
  log(`${mode} run took ${seconds.toFixed(0)} s`);
  process.stdout.write(`\n${textTable(rows)}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    if (labIsUp()) await labDown().catch(() => {});
    await cleanupTemps().catch(() => {});
    process.exit(1);
  },
);
