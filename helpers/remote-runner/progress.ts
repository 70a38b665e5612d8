// What the runner tells the user: a line on stderr, and a run event for controllers.
import { RUNNER_EVENT, type Phase, type RunnerEvent } from '../shared/progress.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { runKeys, type SyncClient } from '../sync-service/client.ts';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export class Progress {
  readonly #client: SyncClient | undefined;
  readonly #events: string;
  readonly #base: Pick<RunnerEvent, 'pid' | 'group' | 'host' | 'arch'>;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #write: (line: string) => void;

  // `pid` names the instance's process (this one by default); lines go to `write` (stderr by default).
  constructor(client: SyncClient | undefined, env: RunEnv, host: string, arch: string, options: { pid?: number; write?: (line: string) => void } = {}) {
    this.#client = client;
    this.#events = runKeys({ run: env.run, plan: env.plan, testCase: env.testCase }).events;
    this.#base = { pid: options.pid ?? process.pid, group: env.group, host, arch };
    this.#write = options.write ?? ((line) => void process.stderr.write(line));
  }

  // Report a phase: `ms` it took, `bytes`/`paths` it moved, and a free-form note.
  report(phase: Phase, detail: Omit<RunnerEvent, 'pid' | 'group' | 'host' | 'arch' | 'phase'> = {}): void {
    const parts = [`remote-runner: ${this.#base.host} (${this.#base.arch}): ${phase}`];
    if (detail.paths !== undefined) parts.push(`${detail.paths} paths`);
    if (detail.bytes !== undefined) parts.push(mb(detail.bytes));
    if (detail.ms !== undefined) parts.push(`in ${(detail.ms / 1000).toFixed(2)} s`);
    if (detail.note) parts.push(detail.note);
    this.#write(`${parts.join(', ')}\n`);
    if (!this.#client) return;
    const event = { [RUNNER_EVENT]: { ...this.#base, phase, ...detail } };
    const sent = this.#client.publish(this.#events, event).catch(() => {});
    this.#pending.add(sent);
    void sent.finally(() => this.#pending.delete(sent));
  }

  // Wait until every report reached the sync service (or failed to).
  async flush(): Promise<void> {
    await Promise.all(this.#pending);
  }
}

// A throttled "copying X of Y MB (R MB/s)" line for long transfers.
export function byteMeter(label: string, everyMs = 2_000): (sent: number, total: number) => void {
  const start = performance.now();
  let last = start;
  return (sent, total) => {
    const now = performance.now();
    if (now - last < everyMs) return;
    last = now;
    const rate = sent / 1e6 / ((now - start) / 1000);
    process.stderr.write(`${label}: ${mb(sent)}${total ? ` of ${mb(total)}` : ''} (${rate.toFixed(1)} MB/s)\n`);
  };
}

// Time an async step.
export async function timed<T>(step: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await step();
  return { value, ms: Math.round(performance.now() - start) };
}
