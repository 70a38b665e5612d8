// B5': our sync service against Testground's Go service at 10,000 clients. Each run
// starts a fresh service process and drives it with one load generator written in Go
// (scripts/bench/sync-load-go), the same for both sides: connect, signal_entry,
// barrier, then pub/sub on one topic, timed phase by phase.
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { ensureGoPeer, startService, type Service } from './b5-sync.ts';
import { alternate, pairRatios, type Row } from './compare.ts';
import { log, must, repoRoot } from './util.ts';

const generatorDir = join(repoRoot, 'scripts/bench/sync-load-go');
const binDir = join(repoRoot, '.cache/bin');
// Most WebSocket handshakes the generator keeps in flight.
const dialParallel = 256;

export const scalePhases = ['connect', 'signal_entry', 'barrier', 'pubsub'] as const;
export type ScalePhaseName = (typeof scalePhases)[number];

/** B5''s workload. */
export interface ScaleSize {
  clients: number;
  /** How many clients publish one message each; every client subscribes and reads them all. */
  publishers: number;
  /** Bound of one run's pub/sub; a run past it stops and counts as not finished. */
  pubsubBoundMs: number;
}

const phaseSchema = z.object({
  name: z.enum(scalePhases),
  ms: z.number(),
  serverCpuMs: z.number(),
  loadCpuMs: z.number(),
  serverRssKiB: z.number(),
});

// What the generator prints: one JSON object.
const runSchema = z.object({
  phases: z.array(phaseSchema).length(scalePhases.length),
  pubsub: z.object({ finished: z.boolean(), delivered: z.number(), expected: z.number(), clientsDone: z.number() }),
  serverPeakRssKiB: z.number(),
});

/** One phase of one run: wall time, CPU time of the service and of the generator (ms), and the service's resident set at its end. */
export type ScalePhase = Omit<z.infer<typeof phaseSchema>, 'name'>;

/** One run of one side. */
export interface ScaleRun {
  phases: Record<ScalePhaseName, ScalePhase>;
  pubsub: { finished: boolean; delivered: number; expected: number; clientsDone: number };
  /** The service's peak resident set (VmHWM) over the run, in KiB. */
  serverPeakRssKiB: number;
}

/** Every timed run of both sides, pair by pair, for the report. */
export interface ScaleProfile {
  size: ScaleSize;
  /** Most WebSocket handshakes the generator keeps in flight. */
  dialParallel: number;
  go: ScaleRun[];
  ours: ScaleRun[];
}

// The generator, built once per version of its sources into .cache/bin (go.sum pins
// its one module; Go takes it from the module cache, or from the proxy if missing).
async function ensureLoadGenerator(): Promise<string> {
  const files = (await readdir(generatorDir)).filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum').sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f}\0`).update(await readFile(join(generatorDir, f)));
  const out = join(binDir, `sync-load-go-${hash.digest('hex').slice(0, 12)}`);
  try {
    await access(out);
    return out;
  } catch {
    log("B5': building the load generator (scripts/bench/sync-load-go)");
  }
  await mkdir(binDir, { recursive: true });
  await must('go', ['build', '-o', `${out}.tmp`, '.'], {
    cwd: generatorDir,
    env: { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
    timeout: 600_000,
  }).catch((error: Error) => {
    throw new Error(`cannot build the load generator (its one module, github.com/gorilla/websocket v1.4.1, comes from the Go module cache or GOPROXY): ${error.message}`, {
      cause: error,
    });
  });
  await rename(`${out}.tmp`, out);
  for (const f of await readdir(binDir)) {
    if (f.startsWith('sync-load-go-') && join(binDir, f) !== out) await rm(join(binDir, f), { force: true });
  }
  return out;
}

// Start a service with its open-file limit raised to the hard limit: every client is a descriptor.
async function startRaised(command: string, args: string[], need: number): Promise<Service> {
  const service = await startService('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', command, ...args]).catch((error: Error) => {
    throw new Error(`${command}: ${error.message}`, { cause: error });
  });
  const limit = /^Max open files\s+(\S+)/m.exec(await readFile(`/proc/${service.pid}/limits`, 'utf8'))?.[1];
  const soft = limit === 'unlimited' ? Infinity : Number(limit);
  if (!(soft >= need)) {
    await service.stop();
    throw new Error(`${command}: may open ${limit} files (RLIMIT_NOFILE), the clients need ${need}: raise the hard limit (ulimit -Hn) as root`);
  }
  return service;
}

// One run of the generator against `service`; its progress lines go to the log.
async function loadRun(generator: string, service: Service, size: ScaleSize, label: string): Promise<ScaleRun> {
  const args = [
    '-url', service.url,
    '-clients', String(size.clients),
    '-publishers', String(size.publishers),
    '-server-pid', String(service.pid),
    '-dial-parallel', String(dialParallel),
    '-pubsub-timeout', `${size.pubsubBoundMs}ms`,
  ];
  const r = await execa(generator, args, {
    reject: false,
    stdin: 'ignore',
    timeout: size.pubsubBoundMs + 600_000,
    stderr: [
      function* (line: unknown) {
        log(`B5' ${label}: ${String(line)}`);
        yield line;
      },
    ],
  });
  if (r.failed) {
    const tail = String(r.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`sync-load-go against ${label} failed (${r.exitCode ?? r.signal ?? r.shortMessage}):\n${tail}`);
  }
  const out = runSchema.parse(JSON.parse(String(r.stdout)));
  const phases = Object.fromEntries(out.phases.map(({ name, ...phase }) => [name, phase])) as Record<ScalePhaseName, ScalePhase>;
  return { phases, pubsub: out.pubsub, serverPeakRssKiB: out.serverPeakRssKiB };
}

/** A run's wall time over all phases, in ms. */
export const runMs = (run: ScaleRun): number => scalePhases.reduce((sum, p) => sum + run.phases[p].ms, 0);

const count = (n: number): string => n.toLocaleString('en-US');

// `ours` is the packaged sync-service bin of the build.
export async function benchSyncScale(ourBin: string, pairs: number, size: ScaleSize): Promise<{ row: Row; profile: ScaleProfile }> {
  const generator = await ensureLoadGenerator();
  const sides = { go: await ensureGoPeer(), ours: ourBin };
  const need = size.clients + 64;
  const run = async (side: keyof typeof sides, s: ScaleSize, label: string): Promise<ScaleRun> => {
    const service = await startRaised(sides[side], ['--port', '0'], need);
    try {
      return await loadRun(generator, service, s, label);
    } finally {
      await service.stop();
    }
  };

  // One small untimed run each first: binaries and page caches warm.
  const warm = { clients: Math.min(size.clients, 1000), publishers: Math.min(size.publishers, 100), pubsubBoundMs: 120_000 };
  await run('go', warm, 'Go, warm-up');
  await run('ours', warm, 'ours, warm-up');
  const profile: ScaleProfile = { size, dialParallel, go: [], ours: [] };
  const side = (name: keyof typeof sides) => async (pair: number): Promise<number> => {
    const r = await run(name, size, `${name === 'go' ? 'Go' : 'ours'}, pair ${pair + 1}`);
    profile[name].push(r);
    return runMs(r);
  };
  const [go, ours] = await alternate(`B5' sync service at ${count(size.clients)} clients (Go / ours, all phases)`, pairs, [side('go'), side('ours')]);

  const remarks: string[] = [];
  for (const [name, runs] of [['Go', profile.go], ['ours', profile.ours]] as const) {
    runs.forEach((r, i) => {
      if (!r.pubsub.finished) {
        remarks.push(
          `pair ${i + 1}: ${name} did not finish pub/sub within ${size.pubsubBoundMs / 1000} s (${count(r.pubsub.delivered)} of ${count(r.pubsub.expected)} deliveries); its time counts as the bound, so the ratio understates the gap`,
        );
      }
    });
  }
  const row: Row = {
    id: "B5'",
    what:
      `${count(size.clients)} clients: connect, signal_entry, barrier on all; then all subscribe to one topic, ${count(size.publishers)} publish one message each ` +
      `and every client reads every message (${count(size.clients * size.publishers)} deliveries)`,
    ratioIs: 'ours / Go (time)',
    baselineLabel: 'Go sync-service v0.1.0',
    oursLabel: 'ours',
    baseline: go!,
    ours: ours!,
    ratios: pairRatios(ours!, go!),
    goal: { op: '<=', value: 1.0 },
    remarks,
  };
  return { row, profile };
}
