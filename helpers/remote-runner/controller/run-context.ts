// What every instance of one run shares in the controller: the run, one
// connection to its sync service, its job descriptions, and its hosts.
import { loadJobDescription, type JobDescription } from '../../closure/job-description.ts';
import { DEFAULT_MAX_COPIES, FAN_OUT_PARAM, MAX_COPIES_PARAM } from '../params.ts';
import { boolParam, intParam } from '../../runenv/getters.ts';
import type { RunEnv } from '../../runenv/runenv.ts';
import { SyncClient } from '../../sync-service/client.ts';
import { Fleet } from '../fleet.ts';
import { jobForProgram } from '../self-placed.ts';

export class RunContext {
  readonly run: string;
  readonly sync: SyncClient;
  readonly #runenv: RunEnv;
  readonly #descriptions = new Map<string, Promise<JobDescription>>();
  readonly #fleets = new Map<JobDescription, Fleet>();

  private constructor(runenv: RunEnv, sync: SyncClient) {
    this.run = runenv.run;
    this.#runenv = runenv;
    this.sync = sync;
  }

  // The context of the run `runenv` belongs to: connects to its sync service.
  static async open(runenv: RunEnv): Promise<RunContext> {
    return new RunContext(runenv, await SyncClient.connect(runenv.syncService.url, { signal: AbortSignal.timeout(30_000) }));
  }

  // The job description of a file, or of a program that places itself (read once).
  description(source: { job: string } | { app: string }): Promise<JobDescription> {
    const key = 'job' in source ? `job:${source.job}` : `app:${source.app}`;
    let pending = this.#descriptions.get(key);
    if (!pending) {
      pending = 'job' in source ? loadJobDescription(source.job) : jobForProgram(source.app).then((j) => j.description);
      pending.catch(() => this.#descriptions.delete(key));
      this.#descriptions.set(key, pending);
    }
    return pending;
  }

  // The hosts of a job description (one fleet per description).
  fleet(description: JobDescription, log: (line: string) => void): Fleet {
    let fleet = this.#fleets.get(description);
    if (!fleet) {
      const { syncService, influxdbUrl } = this.#runenv;
      fleet = new Fleet({
        description,
        sync: { host: syncService.host, port: syncService.port },
        ...(influxdbUrl ? { influxdbUrl } : {}),
        maxCopies: intParam(this.#runenv, MAX_COPIES_PARAM, DEFAULT_MAX_COPIES),
        fanOut: boolParam(this.#runenv, FAN_OUT_PARAM, true),
        log,
      });
      this.#fleets.set(description, fleet);
    }
    return fleet;
  }

  // Stop every host's agent and close every connection.
  async close(): Promise<void> {
    await Promise.allSettled([...this.#fleets.values()].map((fleet) => fleet.close()));
    this.sync.close();
  }
}
