// Run a child in the foreground: relay SIGINT/SIGTERM/SIGHUP to it and report its status.
import { spawn, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { TgError } from './error.ts';
import { exitStatus } from './terminate.ts';

const relayed: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

// Spawn `command` with inherited stdio, relay termination signals, resolve with its shell-style status.
// Aborting `stop.signal` sends the child TERM, and KILL after `stop.graceMs`.
export async function runForeground(command: string, args: string[], options: SpawnOptions, stop?: { signal: AbortSignal; graceMs: number }): Promise<number> {
  // Stopped before it started: it never starts.
  if (stop?.signal.aborted) return exitStatus(null, 'SIGTERM');
  const child = spawn(command, args, { stdio: 'inherit', ...options });
  const relay = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of relayed) process.on(s, relay);
  const onStop = () => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), stop!.graceMs).unref();
  };
  stop?.signal.addEventListener('abort', onStop, { once: true });
  try {
    const [code, signal] = (await Promise.race([
      once(child, 'exit'),
      once(child, 'error').then(([error]) => {
        throw new TgError('E_INSTANCE', `cannot start ${command}: ${(error as Error).message}`, { cause: error });
      }),
    ])) as [number | null, NodeJS.Signals | null];
    return exitStatus(code, signal);
  } finally {
    stop?.signal.removeEventListener('abort', onStop);
    for (const s of relayed) process.off(s, relay);
  }
}
