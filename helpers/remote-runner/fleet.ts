// The hosts of a run, for whoever runs its instances (tg-run, or the run's
// controller): for each host, one SSH connection, one placement of the app and
// the agent, one set of forwards and one agent that runs every instance placed
// there, for the whole run.
import { HostAgent } from '../agent/host-agent.ts';
import { jobFor, programOf, type JobDescription, type SystemJob } from '../closure/job-description.ts';
import type { CopyReport } from '../closure/copy.ts';
import { placeOnHost, type PlaceReport } from './place.ts';
import { Senders } from './senders.ts';
import type { Runner } from '../runners/runners.ts';
import { localSystem } from '../runners/runners.ts';
import { TgError } from '../shared/error.ts';
import { resolveSshTarget } from '../ssh/ssh-config.ts';
import { openSsh, type RemoteForward, type SshSession } from '../ssh/session.ts';

/** A host of the run, ready to run instances. */
export interface HostLink {
  alias: string;
  system: string;
  agent: HostAgent;
  /** The app's program on the host. */
  program: string;
  /** The forwarded sync service and InfluxDB on the host's loopback. */
  syncPort: number;
  influxdbUrl?: string;
  placed: PlaceReport;
}

/** What a fleet needs. */
export interface FleetOptions {
  description: JobDescription;
  /** Where the embedded sync service listens here. */
  sync: { host: string; port: number };
  influxdbUrl?: string;
  /** How many hosts may be copied to from this machine at once. */
  maxCopies: number;
  /** Let hosts that hold the job send it to the next ones (default true). */
  fanOut?: boolean;
  /** Progress lines. */
  log(line: string): void;
}

/** Why a host could not be used: the phase it failed in and the error. */
export class HostFailure extends TgError {
  constructor(
    readonly alias: string,
    readonly phase: string,
    cause: unknown,
  ) {
    super('E_REMOTE', `${alias}, ${phase}: ${(cause as Error).message}`, { cause });
  }
}

// What a copy did, after its numbers: what it sent of the closure, what the
// host's substituters gave, and how the stream travelled.
export function copyNote(c: CopyReport): string {
  const parts = [c.missing === 0 && c.substituted === 0 ? `all ${c.closure} paths already present` : `of ${c.closure} in the closure`];
  if (c.substituted > 0) parts.push(`${c.substituted} from the host's substituters`);
  if (c.missing > 0) parts.push(c.compression);
  return parts.join(', ');
}

export class Fleet {
  readonly #options: FleetOptions;
  readonly #hosts = new Map<string, Promise<HostLink>>();
  readonly #sessions: SshSession[] = [];
  readonly #forwards: RemoteForward[] = [];
  readonly #agents: HostAgent[] = [];
  readonly #senders: Senders;

  constructor(options: FleetOptions) {
    this.#options = options;
    this.#senders = new Senders({ maxCopies: options.maxCopies, fanOut: options.fanOut !== false, log: options.log });
  }

  // The host for `runner`, opened and placed on first use; `first` is true for
  // the one caller that opened it.
  async host(runner: Runner): Promise<{ link: HostLink; first: boolean }> {
    const system = runner.arch ?? localSystem();
    const key = `${runner.name}\0${system}\0${runner.build ?? 'local'}`;
    let link = this.#hosts.get(key);
    const first = !link;
    if (!link) {
      link = this.#open(runner.name, jobFor(this.#options.description, system), runner.build === 'remote');
      link.catch(() => {});
      this.#hosts.set(key, link);
    }
    return { link: await link, first };
  }

  // Stop every agent (they remove their work dirs), then close forwards and connections.
  async close(): Promise<void> {
    await Promise.allSettled(this.#agents.map((agent) => agent.shutdown()));
    await Promise.allSettled(this.#forwards.map((forward) => forward.close()));
    await Promise.allSettled(this.#sessions.map((ssh) => ssh.close()));
  }

  async #open(alias: string, job: SystemJob, buildOnHost: boolean): Promise<HostLink> {
    let phase = 'connecting over SSH';
    try {
      const ssh = await openSsh(await resolveSshTarget(alias, { signal: AbortSignal.timeout(15_000) }), { signal: AbortSignal.timeout(30_000) });
      this.#sessions.push(ssh);
      const placed = await this.#place(ssh, alias, job, buildOnHost, (p) => (phase = p));
      this.#report(alias, job.system, placed);
      phase = 'forwarding the sync service';
      const sync = await ssh.forwardIn('127.0.0.1', this.#options.sync);
      this.#forwards.push(sync);
      let influxdbUrl: string | undefined;
      if (this.#options.influxdbUrl) {
        const target = new URL(this.#options.influxdbUrl);
        const influx = await ssh.forwardIn('127.0.0.1', { host: target.hostname, port: Number(target.port || (target.protocol === 'https:' ? 443 : 80)) });
        this.#forwards.push(influx);
        target.hostname = '127.0.0.1';
        target.port = String(influx.port);
        influxdbUrl = target.toString();
      }
      phase = 'starting the agent';
      const agent = await HostAgent.start(ssh, alias, programOf({ ...job.agent, outPath: placed.placed.agent }));
      this.#agents.push(agent);
      return {
        alias,
        system: job.system,
        agent,
        program: programOf({ ...job.app, outPath: placed.placed.app }),
        syncPort: sync.port,
        ...(influxdbUrl ? { influxdbUrl } : {}),
        placed,
      };
    } catch (error) {
      throw new HostFailure(alias, phase, error);
    }
  }

  // Place the job on the host; while and after it receives the job's closure, it may send it on.
  async #place(ssh: SshSession, alias: string, job: SystemJob, buildOnHost: boolean, phase: (p: string) => void): Promise<PlaceReport> {
    const key = `${job.system}\0${job.app.outPath}\0${job.agent.outPath}`;
    const target = { ssh, alias, key, system: job.system, mayHold: !buildOnHost, phase };
    const placed = await placeOnHost({
      ssh,
      alias,
      job,
      buildOnHost,
      phase,
      send: (needs) => {
        phase('waiting for a copy slot');
        return this.#senders.send(target, needs);
      },
      fromHere: (work) => this.#senders.fromHere(work),
    });
    return placed;
  }

  #report(alias: string, system: string, placed: PlaceReport): void {
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    if (placed.built.length > 0) this.#options.log(`${alias} (${system}): build, in ${(placed.buildMs / 1000).toFixed(2)} s, built ${placed.built.join(', ')} on the host`);
    const c = placed.copied;
    if (!c) return;
    this.#options.log(`${alias} (${system}): copy, ${c.missing} paths, ${mb(c.bytes)}, in ${(c.ms / 1000).toFixed(2)} s, ${copyNote(c)}`);
  }
}
