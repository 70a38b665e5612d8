// B5: our sync service against Testground's Go sync service, as separate processes,
// under the same load from raw WebSocket clients in this process.
import { readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { alternate, pairRatios, type Row } from './compare.ts';
import { runLoad, type LoadSize } from './sync-load.ts';
import { log, must, repoRoot } from './util.ts';

const goPeer = join(repoRoot, '.cache/bin/go-sync-peer');

/** A service under test, its own process. */
export interface Service {
  url: string;
  /** Its process id, for /proc. */
  pid: number;
  /** User + system CPU time the service has used so far, in ms. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Each side's CPU time per phase (ms, one per pair), from /proc. */
export interface SyncCpu {
  barrier: { go: number[]; ours: number[] };
  pubsub: { go: number[]; ours: number[] };
}

// utime + stime of process `pid` in ms (clock ticks of 10 ms).
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// Start a service that prints its ws:// URL as its first line.
export async function startService(command: string, args: string[]): Promise<Service> {
  const child: ResultPromise = execa(command, args, { reject: false, stdin: 'ignore', stderr: 'ignore', cwd: repoRoot, timeout: 1_800_000 });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command}: no URL within 30 s`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    void child.then((r) => reject(new Error(`${command} exited ${r.exitCode} before printing its URL`)));
  });
  const pid = child.pid!;
  return {
    url,
    pid,
    cpuMs: () => cpuOf(pid),
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}

// The Go service as the tests build it (test/global-setup.ts); built here only from
// the local module cache, never from the network.
export async function ensureGoPeer(): Promise<string> {
  try {
    await access(goPeer);
    return goPeer;
  } catch {
    log('B5: building the Go sync service from the local Go module cache');
    await must('go', ['build', '-o', goPeer, '.'], {
      cwd: join(repoRoot, 'test/go-sync-peer'),
      env: { GOFLAGS: '-mod=mod', CGO_ENABLED: '0', GOPROXY: 'off' },
    }).catch((error: Error) => {
      throw new Error(`cannot build the Go sync service offline (run ./scripts/test once to fetch its modules): ${error.message}`);
    });
    return goPeer;
  }
}

// `ours` is the packaged sync-service bin of the build.
export async function benchSync(ourBin: string, pairs: number, size: LoadSize): Promise<{ rows: Row[]; cpu: SyncCpu }> {
  const go = await startService(await ensureGoPeer(), ['--port', '0']);
  const ours = await startService(ourBin, ['--port', '0']);
  try {
    let n = 0;
    const barrier: number[][] = [[], []];
    const pubsub: number[][] = [[], []];
    const cpu: SyncCpu = { barrier: { go: [], ours: [] }, pubsub: { go: [], ours: [] } };
    const side = (service: Service, s: number) => async (): Promise<number> => {
      const r = await runLoad(service.url, size, `bench${Date.now()}x${n++}`, service.cpuMs);
      barrier[s]!.push(r.barrierMs);
      pubsub[s]!.push(r.pubsubMs);
      const who = s === 0 ? 'go' : 'ours';
      cpu.barrier[who].push(r.barrierCpuMs);
      cpu.pubsub[who].push(r.pubsubCpuMs);
      return r.barrierMs + r.pubsubMs;
    };
    // One untimed run each first: both services and this process's clients warmed up.
    await runLoad(go.url, size, `warmup${Date.now()}a`);
    await runLoad(ours.url, size, `warmup${Date.now()}b`);
    await alternate('B5 sync service (Go / ours, barrier + pub/sub)', pairs, [side(go, 0), side(ours, 1)]);
    const messages = size.publishers * size.messagesPerPublisher;
    const common = { ratioIs: 'ours / Go (time)', baselineLabel: 'Go sync-service v0.1.0', oursLabel: 'ours', goal: { op: '<=' as const, value: 1.0 }, remarks: [] };
    const rows: Row[] = [
      {
        ...common,
        id: 'B5 barrier',
        what: `${size.clients} clients: connect, signal_entry, barrier on all`,
        baseline: barrier[0]!,
        ours: barrier[1]!,
        ratios: pairRatios(barrier[1]!, barrier[0]!),
      },
      {
        ...common,
        id: 'B5 pub/sub',
        what: `${messages} messages: ${size.publishers} publishers, ${size.subscribers} subscribers get all`,
        baseline: pubsub[0]!,
        ours: pubsub[1]!,
        ratios: pairRatios(pubsub[1]!, pubsub[0]!),
      },
    ];
    return { rows, cpu };
  } finally {
    await Promise.allSettled([go.stop(), ours.stop()]);
  }
}
