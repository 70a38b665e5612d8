// Starts the Go sync service built by the global setup and stops it again.
import { execa } from 'execa';
import { inject } from 'vitest';
import { firstLine } from './process.ts';

export interface RunningPeer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startGoSyncPeer(): Promise<RunningPeer> {
  const child = execa(inject('goSyncPeer'), ['--port', '0'], { reject: false, stdin: 'ignore' });
  const url = await firstLine(child.stdout!, AbortSignal.timeout(10_000));
  return {
    url,
    port: Number(new URL(url).port),
    async close() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
