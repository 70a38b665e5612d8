// One instance, end to end: choose the host, then run the app there or here.
import { TgError } from '../shared/error.ts';
import { runForeground } from '../shared/relay.ts';
import { chooseServer } from '../choose-server/choose.ts';
import { localSystem } from '../choose-server/runners.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import { SyncClient } from '../sync-service/client.ts';
import { appFor, loadArtifacts } from './app.ts';
import { Progress, timed } from './progress.ts';
import { runRemote } from './remote.ts';
import { exitStatus } from '../shared/terminate.ts';

/** Options of runInstance. */
export interface InstanceOptions {
  /** The job description of a Nix build; without it, the app is this source tree's plan. */
  artifactsFile?: string;
  /** The instance's whole environment, passed on unchanged. */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Between TERM and KILL when the remote app is stopped. Default 10 s. */
  graceMs?: number;
}

// Turn SIGTERM/SIGINT/SIGHUP into an abort of `stop` while `work` runs.
async function withStopSignals<T>(work: (stop: AbortSignal, stoppedBy: () => NodeJS.Signals | undefined) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  let by: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    by ??= signal;
    process.stderr.write(`remote-runner: ${signal}: stopping the remote app, then pulling its outputs\n`);
    stop.abort(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    return await work(stop.signal, () => by);
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

// Run this instance where choose-server sends it; resolves with its exit status.
export async function runInstance(runenv: RunEnv, options: InstanceOptions): Promise<number> {
  const artifacts = options.artifactsFile ? await loadArtifacts(options.artifactsFile) : undefined;
  const client = await SyncClient.connect(runenv.syncService.url, { signal: options.signal ?? AbortSignal.timeout(30_000) });
  try {
    const choice = await chooseServer(runenv, { client, ...(options.signal ? { signal: options.signal } : {}) });
    const progress = new Progress(client, runenv, choice.name, choice.arch);
    progress.report('chosen', { note: `runner ${choice.index} of remote-runners (seq ${choice.seq})` });
    if (choice.name !== 'localhost') {
      const app = appFor(artifacts, choice.arch);
      if (app.kind !== 'nix') {
        throw new TgError('E_BUILD', `${choice.name}: a remote host needs the app's Nix closure: build with nix:generic (this runner runs from source)`);
      }
      return await withStopSignals(async (stop, stoppedBy) => {
        const status = await runRemote({ runenv, choice, app, env: options.env, client, progress, stop, graceMs: options.graceMs ?? 10_000 });
        await progress.flush();
        const by = stoppedBy();
        return by ? exitStatus(null, by) : status;
      });
    }
    if (choice.arch !== localSystem()) {
      throw new TgError('E_PARAM', `localhost is ${localSystem()}, but remote-runners[${choice.index}].arch says ${choice.arch}`);
    }
    const app = appFor(artifacts, choice.arch);
    const [command, args] = app.kind === 'source' ? [process.execPath, [app.bin]] : [app.bin, []];
    const { value: status, ms } = await timed(() => runForeground(command, args, { env: options.env }));
    progress.report('run', { ms, note: `exit ${status}` });
    await progress.flush();
    return status;
  } finally {
    client.close();
  }
}
