// Spawn one instance the way local:exec does, and prefix its output lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import type { Artifact } from './build.ts';
import { printedResult } from './outcomes.ts';

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

// Start `artifact` with exactly `env`, in its own process group, in `cwd`.
export function startInstance(artifact: Artifact, tag: string, env: Record<string, string>, cwd: string, out: { stdout: Writable; stderr: Writable }): Running {
  const child = spawn(artifact.command, artifact.args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let printed: ReturnType<Running['printed']>;
  const prefix = `<< ${tag} >> `;
  const pump = (stream: NodeJS.ReadableStream, sink: Writable, watch: boolean) =>
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (watch) printed = printedResult(line) ?? printed;
      sink.write(`${prefix}${line}\n`);
    });
  pump(child.stdout!, out.stdout, true);
  pump(child.stderr!, out.stderr, false);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => {
      out.stderr.write(`${prefix}cannot start ${artifact.command}: ${error.message}\n`);
      resolve({ code: 127, signal: null });
    });
    void once(child, 'close').then(([code, signal]) => resolve({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  });
  return { tag, child, startedAt: Date.now(), closed, printed: () => printed };
}
