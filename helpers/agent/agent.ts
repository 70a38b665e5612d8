// remote-agent run: the remote half of the runner. It reads one job line on stdin,
// runs the app in a fresh work dir with exactly that environment (no shell), frames
// the app's output and then its outputs tar onto stdout, and removes the work dir.
// If stdin ends before the runner says `done` (the runner died or the connection
// was lost), it kills the app's process group and cleans up on its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { TgError } from '../shared/error.ts';
import { exitStatus } from '../shared/terminate.ts';
import { FRAME, MAX_FRAME, encodeFrame, type FrameKind } from './frames.ts';
import { controlSchema, jobSchema, type AgentEvent, type Job } from './job.ts';
import { packOutputs } from '../outputs/tar.ts';

const lostGraceMs = 2_000;

// Write a frame to stdout, resolving when it is flushed (backpressure).
function send(kind: FrameKind, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(encodeFrame(kind, payload), (error) => (error ? reject(error) : resolve()));
  });
}

const sendEvent = (event: AgentEvent) => send(FRAME.event, Buffer.from(JSON.stringify(event)));

async function pump(stream: Readable, kind: FrameKind): Promise<void> {
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    for (let at = 0; at < buf.length; at += MAX_FRAME) await send(kind, buf.subarray(at, at + MAX_FRAME));
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
}

// Stop the app: TERM to its group now, KILL after `graceMs`.
function stopApp(child: ChildProcess, graceMs: number): void {
  killGroup(child, 'SIGTERM');
  setTimeout(() => killGroup(child, 'SIGKILL'), graceMs).unref();
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  if (argv[0] !== 'run' || argv.length !== 1) throw new TgError('E_USAGE', 'usage: remote-agent run   (reads the job as one JSON line on stdin)');
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new TgError('E_REMOTE', 'remote-agent: stdin ended before the job line');
  let job: Job;
  try {
    job = jobSchema.parse(JSON.parse(first.value));
  } catch (error) {
    throw new TgError('E_REMOTE', `remote-agent: invalid job line: ${(error as Error).message}`, { cause: error });
  }

  const workdir = await mkdtemp(join(tmpdir(), 'remote-runner-'));
  const outputs = join(workdir, 'outputs');
  const temp = join(workdir, 'temp');
  await Promise.all([mkdir(outputs), mkdir(temp)]);
  const env = { ...job.env, PATH: process.env.PATH ?? '/usr/bin:/bin', TEST_OUTPUTS_PATH: outputs, TEST_TEMP_PATH: temp };
  const app = spawn(job.command, job.args, { env, cwd: temp, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });

  let done = false;
  let lost = false;
  // Control lines: `term` stops the app; `done` lets us clean up; EOF first means we are on our own.
  const control = (async () => {
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      const parsed = controlSchema.safeParse(JSON.parse(next.value || 'null'));
      if (!parsed.success) continue;
      if (parsed.data.op === 'term') stopApp(app, job.graceMs);
      if (parsed.data.op === 'done') {
        done = true;
        return;
      }
    }
    lost = true;
    stopApp(app, lostGraceMs);
  })();

  try {
    const started = once(app, 'spawn').then(() => 'spawned' as const);
    const failed = once(app, 'error').then(([error]) => error as Error);
    const first = await Promise.race([started, failed]);
    if (first !== 'spawned') {
      await sendEvent({ type: 'error', message: `cannot start ${job.command}: ${first.message}` });
      await sendEvent({ type: 'exit', status: 127, code: 127, signal: null });
    } else {
      await sendEvent({ type: 'started', workdir, pid: app.pid! });
      const closed = once(app, 'close');
      await Promise.all([pump(app.stdout!, FRAME.stdout), pump(app.stderr!, FRAME.stderr)]);
      const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
      // Anything the app left behind in its group goes now.
      killGroup(app, 'SIGKILL');
      if (!lost) {
        await sendEvent({ type: 'exit', status: exitStatus(code, signal), code, signal });
        await pump(packOutputs(outputs, {}), FRAME.tar);
        await send(FRAME.tarEnd, Buffer.alloc(0));
      }
    }
    await control;
  } finally {
    killGroup(app, 'SIGKILL');
    await rm(workdir, { recursive: true, force: true });
  }
  if (done) await sendEvent({ type: 'cleaned', workdir });
  return lost ? 1 : 0;
}
