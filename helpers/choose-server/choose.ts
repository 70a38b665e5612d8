// Map an instance's sequence number on the state `choose_server` to a runner.
import { TgError } from '../shared/error.ts';
import { boolParam, parseJsonParam } from '../runenv/getters.ts';
import { parseDurationMs } from '../shared/duration.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { SyncClient, runKeys } from '../sync-service/client.ts';
import { OVERFLOW_PARAM, RUNNERS_PARAM, localSystem, overflowSchema, parseRunners, type NixSystem, type Overflow, type Runner } from '../runners/runners.ts';

export const CHOOSE_STATE = 'choose_server';
export const LIVE_ONLY_PARAM = 'remote-runners-live-only';
export const CHECK_TIMEOUT_PARAM = 'remote-runners-check-timeout';

/** The runner chosen for one instance. */
export interface Choice {
  seq: number;
  index: number;
  name: string;
  arch: NixSystem;
  runner: Runner;
}

// Turn a 1-based seq into a 0-based runner index under the overflow policy.
export function pickIndex(seq: number, count: number, overflow: Overflow): number {
  if (!Number.isInteger(seq) || seq < 1) throw new TgError('E_SYNC', `choose-server: invalid sequence number ${seq}`);
  if (seq <= count) return seq - 1;
  switch (overflow) {
    case 'round-robin':
      return (seq - 1) % count;
    case 'first':
      return 0;
    case 'error':
      throw new TgError(
        'E_PARAM',
        `param ${RUNNERS_PARAM}: instance ${seq} has no runner: the list has ${count} and ${OVERFLOW_PARAM} is "error"`,
      );
  }
}

// Read the runners and the overflow policy from the run environment's params.
export function runnerParams(env: Pick<RunEnv, 'params'>): { runners: Runner[]; overflow: Overflow } {
  const runners = parseRunners(env.params[RUNNERS_PARAM] ?? '[{"name":"localhost"}]');
  const overflow = parseJsonParam(OVERFLOW_PARAM, JSON.stringify(env.params[OVERFLOW_PARAM] ?? 'round-robin'), overflowSchema);
  return { runners, overflow };
}

/** Probes runners: for each, in order, whether it is up and, if not, why. */
export type RunnerProbe = (
  runners: Runner[],
  options: { timeoutMs: number; signal?: AbortSignal },
) => Promise<Array<{ state: 'up' | 'down'; detail: string }>>;

// Whether to probe the runners before choosing (off by default), and how long each probe may take.
export function liveParams(env: Pick<RunEnv, 'params'>): { liveOnly: boolean; timeoutMs: number } {
  const liveOnly = boolParam(env, LIVE_ONLY_PARAM, false);
  const timeout = env.params[CHECK_TIMEOUT_PARAM];
  return { liveOnly, timeoutMs: liveOnly && timeout !== undefined ? parseDurationMs(timeout, `param ${CHECK_TIMEOUT_PARAM}`) : 5_000 };
}

// The runners `probe` finds up, in order; each dropped one is logged with why, and none up is an error naming every host.
export async function liveRunners(
  runners: Runner[],
  probe: RunnerProbe,
  options: { timeoutMs: number; signal?: AbortSignal; log?: (line: string) => void },
): Promise<Runner[]> {
  const results = await probe(runners, { timeoutMs: options.timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const why = (i: number): string => results[i]?.detail ?? 'the probe gave no answer';
  const live = runners.filter((_, i) => results[i]?.state === 'up');
  runners.forEach((runner, i) => {
    if (results[i]?.state !== 'up') log(`choose-server: ${LIVE_ONLY_PARAM}: dropping ${runner.name}: ${why(i)}`);
  });
  if (live.length === 0) {
    const hosts = runners.map((runner, i) => `${runner.name} (${why(i)})`).join('; ');
    throw new TgError('E_REMOTE', `param ${RUNNERS_PARAM}: no runner is up, and ${LIVE_ONLY_PARAM} is true: ${hosts}`);
  }
  return live;
}

// The inventory's probe, loaded only when live-only asks for it.
const probeRunners: RunnerProbe = async (runners, options) => (await import('../ssh/probe.ts')).checkRunners(runners, options);

// Map `seq` onto `runners` (the live ones, under live-only); `index` is always into the whole list.
function choice(seq: number, runners: Runner[], overflow: Overflow, all: Runner[] = runners): Choice {
  const runner = runners[pickIndex(seq, runners.length, overflow)]!;
  return { seq, index: all.indexOf(runner), name: runner.name, arch: runner.arch ?? localSystem(), runner };
}

// Enrol on the sync service and choose this instance's runner. Validates the params
// before any network work, so bad input fails without taking a sequence number. With
// `remote-runners-live-only`, probes the runners first and chooses among the live ones.
export async function chooseServer(
  env: RunEnv,
  options: { client?: SyncClient; signal?: AbortSignal; probe?: RunnerProbe; log?: (line: string) => void } = {},
): Promise<Choice> {
  const { runners, overflow } = runnerParams(env);
  const { liveOnly, timeoutMs } = liveParams(env);
  const candidates = liveOnly
    ? await liveRunners(runners, options.probe ?? probeRunners, {
        timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.log ? { log: options.log } : {}),
      })
    : runners;
  const client = options.client ?? (await SyncClient.connect(env.syncService.url, { signal: options.signal }));
  try {
    const seq = await client.signalEntry(runKeys({ run: env.run, plan: env.plan, testCase: env.testCase }).state(CHOOSE_STATE), options.signal);
    return choice(seq, candidates, overflow, runners);
  } finally {
    if (!options.client) client.close();
  }
}
