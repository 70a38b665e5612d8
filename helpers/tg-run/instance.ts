// Spawn one instance the way local:exec does, and prefix its output lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { printedResult } from './outcomes.ts';
import type { PrettyPrinter } from './pretty.ts';

// How long an instance's output may stay open after it exited.
const DRAIN_BOUND_MS = 2_000;

/** One running instance. */
export interface Running {
  tag: string;
  child: ChildProcess;
  startedAt: number;
  /** Resolves once the process has exited and its output is drained. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The result event the instance printed itself, if any. */
  printed(): 'success' | 'failure' | 'crash' | undefined;
}

/** The program an instance runs. */
export interface Program {
  command: string;
  args: string[];
}

// Start `program` with exactly `env`, in its own process group, in `cwd`.
export function startInstance(program: Program, tag: string, env: Record<string, string>, cwd: string, printer: PrettyPrinter): Running {
  const child = spawn(program.command, program.args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
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
  return { tag, child, startedAt: Date.now(), closed, printed: () => printed };
}
