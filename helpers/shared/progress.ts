// The progress event the remote runner publishes on the run's events topic, so
// a controller (tg-run) can tell which host each instance ran on and how long
// each phase took. `pid` is the runner's own process id.
import { z } from 'zod';

export const RUNNER_EVENT = 'remote_runner_event';

export const PHASES = ['chosen', 'copy', 'build', 'run', 'pull', 'cleanup'] as const;
export type Phase = (typeof PHASES)[number];

export const runnerEventSchema = z.object({
  pid: z.number().int(),
  group: z.string(),
  host: z.string(),
  arch: z.string(),
  phase: z.enum(PHASES),
  ms: z.number().optional(),
  bytes: z.number().optional(),
  paths: z.number().optional(),
  note: z.string().optional(),
});

export type RunnerEvent = z.output<typeof runnerEventSchema>;

// The runner event inside a run event, if it is one.
export function runnerEventOf(event: unknown): RunnerEvent | undefined {
  if (typeof event !== 'object' || event === null || !(RUNNER_EVENT in event)) return undefined;
  const parsed = runnerEventSchema.safeParse((event as Record<string, unknown>)[RUNNER_EVENT]);
  return parsed.success ? parsed.data : undefined;
}
