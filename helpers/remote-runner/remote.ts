// Run one instance on a remote host: place the app and the agent there (once per
// host per run), forward the sync service and InfluxDB, run the app through the
// agent, stream its output, pull its outputs home, and let the agent clean up.
import type { Choice } from '../choose-server/choose.ts';
import type { RunEnv } from '../runenv/runenv.ts';
import type { SyncClient } from '../sync-service/client.ts';
import { programOf, type SystemJob } from '../closure/job-description.ts';
import type { Job } from '../agent/job.ts';
import { runAgent } from '../agent/session.ts';
import { resolveSshTarget } from '../ssh/ssh-config.ts';
import { openSsh, type RemoteForward } from '../ssh/session.ts';
import { exitStatus } from '../shared/terminate.ts';
import { placeJob } from './place.ts';
import { placedName } from './self-placed.ts';
import type { Progress } from './progress.ts';

/** Inputs of runRemote. */
export interface RemoteRun {
  runenv: RunEnv;
  choice: Choice;
  /** The app and the agent for the host's system. */
  job: SystemJob;
  /** The instance's environment, passed on byte for byte (PATH excepted). */
  env: NodeJS.ProcessEnv;
  client: SyncClient;
  progress: Progress;
  /** Aborted when the runner is asked to stop (SIGTERM/SIGINT): the app gets TERM, outputs are still pulled. */
  stop: AbortSignal;
  graceMs: number;
  /** Told which phase the run is in, for error messages. */
  phase: (phase: string) => void;
  /** The most bytes of outputs to bring home. */
  maxOutputBytes: number;
}

// Rewrite INFLUXDB_URL to the forwarded port, keeping its scheme and path.
function forwardedUrl(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
}

function influxTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
}

// Run the instance on `choice.name`; resolves with the app's exit status.
export async function runRemote(r: RemoteRun): Promise<number> {
  const alias = r.choice.name;
  r.phase('connecting over SSH');
  const target = await resolveSshTarget(alias, { signal: AbortSignal.timeout(15_000) });
  const ssh = await openSsh(target, { signal: AbortSignal.timeout(30_000) });
  const forwards: RemoteForward[] = [];
  try {
    let placed: Awaited<ReturnType<typeof placeJob>>;
    try {
      placed = await placeJob({ ssh, alias, job: r.job, buildOnHost: r.choice.runner.build === 'remote', runenv: r.runenv, client: r.client, progress: r.progress, phase: r.phase, signal: r.stop });
    } catch (error) {
      if (r.stop.aborted) return exitStatus(null, 'SIGTERM');
      throw error;
    }
    // Stopped while the job was being placed: the app never starts.
    if (r.stop.aborted) return exitStatus(null, 'SIGTERM');

    r.phase('forwarding the sync service');
    const sync = await ssh.forwardIn('127.0.0.1', { host: r.runenv.syncService.host, port: r.runenv.syncService.port });
    forwards.push(sync);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.env)) if (v !== undefined && k !== 'PATH') env[k] = v;
    env.SYNC_SERVICE_HOST = '127.0.0.1';
    env.SYNC_SERVICE_PORT = String(sync.port);
    if (r.runenv.influxdbUrl) {
      const influx = await ssh.forwardIn('127.0.0.1', influxTarget(r.runenv.influxdbUrl));
      forwards.push(influx);
      env.INFLUXDB_URL = forwardedUrl(r.runenv.influxdbUrl, influx.port);
    }
    const command = programOf({ ...r.job.app, outPath: placed.app });
    const job: Job = { version: 1, command, args: [], argv0: placedName(command), env, graceMs: r.graceMs };
    return await runAgent({
      ssh,
      alias,
      agent: programOf({ ...r.job.agent, outPath: placed.agent }),
      job,
      outputsPath: r.runenv.outputsPath,
      maxOutputBytes: r.maxOutputBytes,
      stop: r.stop,
      hooks: {
        phase: r.phase,
        exited: (status, ms) => r.progress.report('run', { ms, note: `exit ${status}` }),
        pulled: (result) => {
          if ('error' in result) {
            process.stderr.write(`remote-runner: ${alias}: pulling outputs: ${result.error.message}\n`);
            return;
          }
          const { report } = result;
          r.progress.report('pull', { ms: result.ms, bytes: report.bytes, paths: report.files });
          for (const refused of report.refused) process.stderr.write(`remote-runner: ${alias}: refused output entry ${JSON.stringify(refused.name)}: ${refused.reason}\n`);
          if (report.refusedTotal > report.refused.length) process.stderr.write(`remote-runner: ${alias}: refused ${report.refusedTotal - report.refused.length} more output entries\n`);
        },
        finished: (cleaned, code) => r.progress.report('cleanup', { note: cleaned ? 'remote work dir removed' : `agent exited ${code} without confirming cleanup` }),
      },
    });
  } finally {
    await Promise.allSettled(forwards.map((f) => f.close()));
    await ssh.close();
  }
}
