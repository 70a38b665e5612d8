// Map an instance's sequence number on the state `choose_server` to a runner.
import { TgError } from '../shared/error.ts';
import { parseJsonParam } from '../runenv/getters.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { SyncClient, runKeys } from '../sync-service/client.ts';
import { OVERFLOW_PARAM, RUNNERS_PARAM, localSystem, overflowSchema, parseRunners, type NixSystem, type Overflow, type Runner } from './runners.ts';

export const CHOOSE_STATE = 'choose_server';

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

function choice(seq: number, runners: Runner[], overflow: Overflow): Choice {
  const index = pickIndex(seq, runners.length, overflow);
  const runner = runners[index]!;
  return { seq, index, name: runner.name, arch: runner.arch ?? localSystem(), runner };
}

// Enrol on the sync service and choose this instance's runner. Validates the params
// before any network work, so bad input fails without taking a sequence number.
export async function chooseServer(env: RunEnv, options: { client?: SyncClient; signal?: AbortSignal } = {}): Promise<Choice> {
  const { runners, overflow } = runnerParams(env);
  const client = options.client ?? (await SyncClient.connect(env.syncService.url, { signal: options.signal }));
  try {
    const seq = await client.signalEntry(runKeys({ run: env.run, plan: env.plan, testCase: env.testCase }).state(CHOOSE_STATE), options.signal);
    return choice(seq, runners, overflow);
  } finally {
    if (!options.client) client.close();
  }
}
