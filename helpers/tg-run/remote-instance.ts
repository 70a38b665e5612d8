// One instance on a host of the fleet: started by the host's agent with the
// instance's environment, its output printed as it comes, its outputs pulled
// into its outputs directory.
import { StringDecoder } from 'node:string_decoder';
import type { Job } from '../agent/job.ts';
import { placedName } from '../remote-runner/self-placed.ts';
import type { Runner } from '../runners/runners.ts';
import type { Fleet, HostLink } from '../remote-runner/fleet.ts';
import type { Ended, Running, Whereabouts } from './instance.ts';
import { printedResult } from './outcomes.ts';
import type { PrettyPrinter } from './pretty.ts';

/** What a remote instance needs. */
export interface RemoteInstance {
  fleet: Fleet;
  runner: Runner;
  tag: string;
  /** The instance's local:exec environment (PATH, TEST_OUTPUTS_PATH and TEST_TEMP_PATH are the host's). */
  env: Record<string, string>;
  outputsPath: string;
  maxOutputBytes: number;
  graceMs: number;
  printer: PrettyPrinter;
}

// Splits a byte stream into lines for `each`; a last line without a newline comes at flush().
function lineSplitter(each: (line: string) => void): { push(chunk: Buffer): void; flush(): void } {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  return {
    push(chunk) {
      const lines = (rest + decoder.write(chunk)).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) each(line.endsWith('\r') ? line.slice(0, -1) : line);
    },
    flush() {
      const last = rest + decoder.end();
      rest = '';
      if (last !== '') each(last);
    },
  };
}

// Start the instance on its host; the host is opened and placed on first use.
export function startRemoteInstance(r: RemoteInstance): Running {
  const stop = new AbortController();
  let printed: ReturnType<Running['printed']>;
  const where: Whereabouts = { host: r.runner.name, phases: {} };
  const out = lineSplitter((line) => {
    printed = printedResult(line) ?? printed;
    r.printer.stdout(r.tag, line);
  });
  const err = lineSplitter((line) => r.printer.stderr(r.tag, line));

  const run = async (): Promise<Ended> => {
    let link: HostLink;
    try {
      ({ link } = await r.fleet.host(r.runner));
    } catch (error) {
      return { code: null, signal: null, failure: (error as Error).message };
    }
    where.phases.copy = link.placed.copied?.ms ?? link.placed.buildMs;
    const env: Record<string, string> = { ...r.env, SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(link.syncPort) };
    delete env.PATH;
    if (link.influxdbUrl) env.INFLUXDB_URL = link.influxdbUrl;
    const job: Job = { version: 1, command: link.program, args: [], argv0: placedName(link.program), env, graceMs: r.graceMs };
    let exit: Ended | undefined;
    try {
      await link.agent.run({
        job,
        outputsPath: r.outputsPath,
        maxOutputBytes: r.maxOutputBytes,
        stop: stop.signal,
        hooks: {
          stdout: (chunk) => out.push(chunk),
          stderr: (chunk) => err.push(chunk),
          exited: (ended, ms) => {
            where.phases.run = ms;
            exit = { code: ended.code, signal: ended.signal as NodeJS.Signals | null };
          },
          pulled: (result) => {
            if ('error' in result) r.printer.stderr(r.tag, `tg-run: ${link.alias}: pulling outputs: ${result.error.message}`);
            else {
              where.phases.pull = result.ms;
              for (const refused of result.report.refused) r.printer.stderr(r.tag, `tg-run: ${link.alias}: refused output entry ${JSON.stringify(refused.name)}: ${refused.reason}`);
            }
          },
          finished: (cleaned) => {
            if (!cleaned) r.printer.stderr(r.tag, `tg-run: ${link.alias}: the agent did not confirm that it removed the instance's work dir`);
          },
        },
      });
      return exit ?? { code: null, signal: null, failure: `${link.alias}: the app's exit status did not arrive` };
    } catch (error) {
      return { code: null, signal: null, failure: `${link.alias}, running the app: ${(error as Error).message}` };
    } finally {
      out.flush();
      err.flush();
      r.printer.finish(r.tag);
    }
  };
  const closed = run().then((ended) => {
    if (ended.failure) r.printer.stderr(r.tag, `tg-run: ${ended.failure}`);
    return ended;
  });
  return {
    tag: r.tag,
    startedAt: Date.now(),
    closed,
    printed: () => printed,
    // The job carries the run's grace period.
    stop: async () => {
      stop.abort();
      await closed;
    },
    where: () => where,
  };
}
