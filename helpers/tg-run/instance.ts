// One instance of a run, here or on a host; and starting one here the way
// local:exec does.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { terminateGroup } from '../shared/terminate.ts';
import { printedResult } from './outcomes.ts';
import type { PrettyPrinter } from './pretty.ts';

// How long an instance's output may stay open after it exited.
const DRAIN_BOUND_MS = 2_000;

/** How an instance ended: its exit, and when it could not run at all, why. */
export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  failure?: string;
}

/** Where an instance ran, and how long each phase took. */
export interface Whereabouts {
  host: string;
  phases: Partial<Record<'copy' | 'build' | 'run' | 'pull', number>>;
}

/** One running instance. */
export interface Running {
  tag: string;
  startedAt: number;
  /** Pids of the processes that carry it here, for progress events that name them. */
  pid?: number;
  /** Resolves once it has ended and its output (and outputs) are home. */
  closed: Promise<Ended>;
  /** The result event the instance printed itself, if any. */
  printed(): 'success' | 'failure' | 'crash' | undefined;
  /** Stop it: TERM, KILL after `graceMs`; resolves once it is gone. */
  stop(graceMs: number): Promise<void>;
  /** Where it ran, when it knows (else what its progress events say). */
  where(): Whereabouts | undefined;
}

/** The program an instance runs. */
export interface Program {
  command: string;
  args: string[];
  /** Its name (argv[0]) when not the command. */
  argv0?: string;
}

// Start `program` with exactly `env`, in its own process group, in `cwd`.
export function startInstance(program: Program, tag: string, env: Record<string, string>, cwd: string, printer: PrettyPrinter): Running {
  const child = spawn(program.command, program.args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(program.argv0 ? { argv0: program.argv0 } : {}) });
  let printed: ReturnType<Running['printed']>;
  const lines = (stream: NodeJS.ReadableStream, each: (line: string) => void) => {
    const reader = createInterface({ input: stream, crlfDelay: Infinity }).on('line', each);
    return once(reader, 'close');
  };
  const drained = Promise.all([
    lines(child.stdout!, (line) => {
      printed = printedResult(line) ?? printed;
      printer.stdout(tag, line);
    }),
    lines(child.stderr!, (line) => printer.stderr(tag, line)),
  ]);
  const closed = new Promise<Ended>((resolve) => {
    child.once('error', (error) => {
      printer.stderr(tag, `cannot start ${program.command}: ${error.message}`);
      resolve({ code: 127, signal: null });
    });
    void once(child, 'exit').then(async ([code, signal]) => {
      // A helper the instance left behind may hold its output open: wait a little, then stop reading.
      if ((await Promise.race([drained.then(() => true), sleep(DRAIN_BOUND_MS, false, { ref: false })])) === false) {
        child.stdout!.destroy();
        child.stderr!.destroy();
        printer.stderr(tag, `tg-run: the instance exited, but something it started still holds its output; stopped reading after ${DRAIN_BOUND_MS / 1000} s`);
      }
      printer.finish(tag);
      resolve({ code: code as number | null, signal: signal as NodeJS.Signals | null });
    });
  });
  return {
    tag,
    startedAt: Date.now(),
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    closed,
    printed: () => printed,
    stop: (graceMs) => terminateGroup(child, graceMs),
    where: () => undefined,
  };
}
