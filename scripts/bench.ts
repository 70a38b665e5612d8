// npm run bench [-- --quick] [-- --write] [-- --only B1,B4]
//
// Whole-process benchmarks on lab hosts: each comparison runs its two sides
// alternately, and the figure is the median of the per-pair ratios. Ends with the
// table of ratios; writes BENCHMARKS.md unless --quick (--write forces it).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startSyncService } from '../helpers/sync-service/index.ts';
import { benchOverhead } from './bench/b1-overhead.ts';
import { benchFanout } from './bench/b2-fanout.ts';
import { benchOutputs } from './bench/b3-outputs.ts';
import { benchCopy } from './bench/b4-copy.ts';
import { benchSync } from './bench/b5-sync.ts';
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
}

const MB = 1e6;
const full: Plan = {
  b1Pairs: 5, b2Pairs: 2, b2Instances: 16, b3Pairs: 3, b3Files: 5000, b3BigBytes: 200 * MB,
  b4Pairs: 3, b4Bytes: 200 * MB, b5Pairs: 5, b5Clients: 1000, b5Publishers: 10, b5Subscribers: 10, b5Messages: 1000,
};
const quick: Plan = {
  b1Pairs: 2, b2Pairs: 1, b2Instances: 16, b3Pairs: 1, b3Files: 1000, b3BigBytes: 50 * MB,
  b4Pairs: 1, b4Bytes: 50 * MB, b5Pairs: 1, b5Clients: 1000, b5Publishers: 10, b5Subscribers: 10, b5Messages: 1000,
};

const HOSTS = 4;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, write: { type: 'boolean' }, dirty: { type: 'boolean' }, only: { type: 'string' }, results: { type: 'string' }, render: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench [-- --quick] [-- --write] [-- --dirty] [-- --only B1,B2,B3,B4,B5] [-- --results <file.json>]\n' +
        '       (builds and measures the committed HEAD; --dirty: the working tree as it is)\n' +
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
  const only = new Set((values.only ?? 'B1,B2,B3,B4,B5').split(',').map((s) => s.trim().toUpperCase()));
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
  } finally {
    if (labIsUp()) await labDown();
    await cleanupTemps();
  }

  const order = ['B1', 'B2', 'B3', 'B4', 'B5'];
  rows.sort((a, b) => order.indexOf(a.id.slice(0, 2)) - order.indexOf(b.id.slice(0, 2)));
  const seconds = elapsedS();
  const report: ReportInput = { machine, mode, plan, rows, findings, seconds, date: new Date().toISOString().slice(0, 10), source };
  if (values.results) await writeFile(values.results, JSON.stringify(report, null, 1));
  if (!values.quick || values.write) {
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
