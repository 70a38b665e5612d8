// The job the controller hands the remote agent: a JSON object, never a shell string.
import { z } from 'zod';

const jobSchema = z.strictObject({
  version: z.literal(1),
  /** Absolute path of the program to run (the app in the Nix store). */
  command: z.string().regex(/^\//, 'expected an absolute path'),
  args: z.array(z.string()),
  /** What the program sees as its own name (argv[0]); the command when left out. */
  argv0: z.string().optional(),
  /** The instance's environment; the agent sets PATH, TEST_OUTPUTS_PATH and TEST_TEMP_PATH. */
  env: z.record(z.string(), z.string()),
  /** Time between TERM and KILL when the app is stopped. */
  graceMs: z.number().int().min(0).max(600_000),
});

export type Job = z.output<typeof jobSchema>;

/** Events the agent reports in `event` frames. */
export type AgentEvent =
  | { type: 'started'; workdir: string; pid: number }
  | { type: 'exit'; status: number; code: number | null; signal: string | null }
  | { type: 'error'; message: string }
  | { type: 'cleaned'; workdir: string };
