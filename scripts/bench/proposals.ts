// Measurements of changes the profiles point at, made here without touching the
// package: the same code with one thing different, so the report can quote the gain.
import net from 'node:net';
import { join } from 'node:path';
import { build as esbuild } from 'esbuild';
import { execa } from 'execa';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { median, must, nixEnv, repoRoot, tempDir } from './util.ts';

type Connect = typeof net.connect;

// What an ES module bundle of CommonJS dependencies needs: require, __filename, __dirname.
const BANNER =
  "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; " +
  'const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);';

// NODE_OPTIONS that make a node process set TCP_NODELAY on every net.connect socket, as
// ssh-session.ts would with `noDelay: true` (a preloaded module; no file needed).
export const NODELAY_NODE_OPTIONS = `--import=data:text/javascript,${encodeURIComponent(
  "import net from 'node:net'; const connect = net.connect; net.connect = (...args) => { const socket = connect(...args); socket.setNoDelay(true); return socket; };",
)}`;

// Run `work` with every net.connect socket set to TCP_NODELAY, as if ssh-session.ts
// connected with `noDelay: true`; the module object is restored afterwards.
export async function withNoDelay<T>(work: () => Promise<T>): Promise<T> {
  const original: Connect = net.connect;
  const patched = ((...args: Parameters<Connect>) => {
    const socket = original(...args);
    socket.setNoDelay(true);
    return socket;
  }) as Connect;
  (net as { connect: Connect }).connect = patched;
  try {
    return await work();
  } finally {
    (net as { connect: Connect }).connect = original;
  }
}

/** ssh2 timings on one lab host, as openSsh connects now and with TCP_NODELAY. */
export interface NoDelayTimes {
  connect: number;
  roundTrip: number;
  forward: number;
}

// Median connect (ssh -G + openSsh), exec round trip (run 'true') and forwardIn on an open connection.
async function sshTimes(host: string): Promise<NoDelayTimes> {
  const connects: number[] = [];
  const trips: number[] = [];
  const forwards: number[] = [];
  for (let c = 0; c < 3; c++) {
    const t0 = performance.now();
    const ssh = await openSsh(await resolveSshTarget(host));
    connects.push(performance.now() - t0);
    try {
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await ssh.run('true');
        trips.push(performance.now() - t);
      }
      const t = performance.now();
      const forward = await ssh.forwardIn('127.0.0.1', { host: '127.0.0.1', port: 9 });
      forwards.push(performance.now() - t);
      await forward.close();
    } finally {
      await ssh.close();
    }
  }
  return { connect: median(connects), roundTrip: median(trips), forward: median(forwards) };
}

export async function noDelayEffect(host: string): Promise<{ now: NoDelayTimes; noDelay: NoDelayTimes }> {
  const now = await sshTimes(host);
  const noDelay = await withNoDelay(() => sshTimes(host));
  return { now, noDelay };
}

// The starts of the two processes a one-instance run starts here, each until it refuses
// to go on (medians of 5): the instance's own (the Go remote-runner, refusing an
// environment without TEST_RUN) and the run's controller (node with its bundle, refusing
// a command line without --socket), which the first instance of every run starts.
export async function startTimes(runner: string, tools: string): Promise<{ runner: number; controller: number }> {
  const start = async (command: string, refusal: RegExp): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await execa(command, [], { env: { PATH: process.env.PATH! }, extendEnv: false, reject: false, stdin: 'ignore', timeout: 60_000 });
      times.push(performance.now() - t0);
      if (!refusal.test(String(r.stderr))) throw new Error(`${command} did not refuse as expected: ${String(r.stderr).slice(-300)}`);
    }
    return median(times);
  };
  return { runner: await start(`${runner}/bin/remote-runner`, /TEST_RUN is not set/), controller: await start(`${tools}/bin/remote-runner-controller`, /--socket is required/) };
}

// The runner's first remote steps in a fresh node process (cold JIT), each timed; `roots`
// are the store paths whose closure it asks the host about (the app and the agent).
export async function coldConnect(node: string, host: string, roots: string[]): Promise<Record<string, number>> {
  const dir = await tempDir('cold');
  const outfile = join(dir, 'cold-connect.mjs');
  await esbuild({
    entryPoints: [join(repoRoot, 'scripts/bench/cold-connect.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    external: ['*.node'],
    banner: { js: BANNER },
  });
  const runs: Array<Record<string, number>> = [];
  for (let i = 0; i < 3; i++) {
    const r = await must(node, [outfile, host, ...roots], { env: { PATH: process.env.PATH!, ...nixEnv }, extendEnv: false, timeout: 60_000 });
    runs.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>);
  }
  return Object.fromEntries(Object.keys(runs[0]!).map((k) => [k, median(runs.map((r) => r[k]!))]));
}
