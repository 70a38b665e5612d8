// Small helpers for tests that drive real processes.
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

// Resolve with the first line a stream prints, or reject when `signal` fires first.
export async function firstLine(stream: Readable, signal: AbortSignal): Promise<string> {
  const lines = createInterface({ input: stream });
  try {
    const onAbort = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error(`no first line: ${String(signal.reason)}`)), { once: true });
    });
    const line = new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      lines.once('close', () => reject(new Error('stream ended before its first line')));
    });
    return await Promise.race([line, onAbort]);
  } finally {
    // readline pauses its input on close; keep draining so the child never blocks on a full pipe.
    lines.close();
    stream.resume();
  }
}
