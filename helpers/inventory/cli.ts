// inventory: load the runner list, print it as JSON, a Nix machines file or ssh_config, and probe it.
import { parseArgs } from 'node:util';
import { RUNNERS_PARAM } from '../runners/runners.ts';
import { unpackParams } from '../runenv/params.ts';
import { TgError } from '../shared/error.ts';
import { checkRunners } from '../ssh/probe.ts';
import { parseDurationMs } from '../shared/duration.ts';
import { loadRunners, toRunner, type InventoryEntry } from '../runners/entries.ts';
import { writeOutDir } from './out-dir.ts';
import { renderMachines } from './render-machines.ts';
import { renderSshConfig } from './render-ssh-config.ts';
import { resolveHosts, type ResolvedHost } from '../ssh/resolve.ts';
import { renderCheckTable } from './table.ts';

const usage = `usage: inventory [--runners <json|@file|machines:file>] [--format json|machines|ssh-config]
                 [--out-dir DIR] [--check] [--live-only] [--timeout 5s]
  --runners    the runner list: inline JSON, @file (JSON or a Nix machines file) or machines:file;
               without it, the remote-runners param of TEST_INSTANCE_PARAMS
  --format     what to print: json (the validated list, default), machines or ssh-config
  --out-dir    also write DIR/machines, DIR/ssh_config and DIR/known_hosts (ssh -F DIR/ssh_config <host>)
  --check      probe every host (SSH, Nix, system) and print a table; exit 1 unless all are up
  --live-only  probe, then print only the hosts that are up (the table goes to stderr); exit 1 if none is
  --timeout    how long each host's probe may take (default 5s)`;

const FORMATS = ['json', 'machines', 'ssh-config'] as const;
type Format = (typeof FORMATS)[number];

interface Options {
  spec: string;
  format: Format;
  outDir: string | undefined;
  check: boolean;
  liveOnly: boolean;
  timeoutMs: number;
}

// The `remote-runners` param of the instance environment; localhost when it is not set, as choose-server does.
function runnersFromEnv(env: NodeJS.ProcessEnv): string {
  const packed = env.TEST_INSTANCE_PARAMS;
  if (packed === undefined) throw new TgError('E_USAGE', `give --runners, or run inside an instance (TEST_INSTANCE_PARAMS is not set)\n${usage}`);
  return unpackParams(packed)[RUNNERS_PARAM] ?? '[{"name":"localhost"}]';
}

function parseOptions(argv: string[]): Options | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        runners: { type: 'string' },
        format: { type: 'string' },
        'out-dir': { type: 'string' },
        check: { type: 'boolean' },
        'live-only': { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
  if (values.help) return undefined;
  const format = values.format ?? 'json';
  if (!(FORMATS as readonly string[]).includes(format)) throw new TgError('E_USAGE', `--format ${JSON.stringify(format)}: expected one of ${FORMATS.join(', ')}\n${usage}`);
  return {
    spec: values.runners ?? runnersFromEnv(process.env),
    format: format as Format,
    outDir: values['out-dir'],
    check: values.check ?? false,
    liveOnly: values['live-only'] ?? false,
    timeoutMs: parseDurationMs(values.timeout ?? '5s', '--timeout'),
  };
}

// The list in the chosen format; machines and ssh-config need the hosts resolved.
function render(format: Format, entries: InventoryEntry[], hosts: ResolvedHost[]): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(entries.map(toRunner))}\n`;
    case 'machines':
      return renderMachines(hosts);
    case 'ssh-config':
      return renderSshConfig(hosts);
  }
}

// Warn about hosts that ssh would refuse because no host key is pinned for them.
function warnUnpinned(hosts: ResolvedHost[]): void {
  for (const { target, hostKeys } of hosts) {
    if (hostKeys.length > 0) continue;
    const files = [...target.userKnownHostsFiles, ...target.globalKnownHostsFiles].join(', ') || 'no known_hosts files';
    process.stderr.write(`inventory: warning: ${target.alias}: no host key for ${target.hostname} is pinned in ${files}\n`);
  }
}

async function run(options: Options, signal: AbortSignal): Promise<number> {
  const all = await loadRunners(options.spec);
  let selected = all;
  let status = 0;
  const probing = options.check || options.liveOnly;
  if (probing) {
    const checks = await checkRunners(all, { timeoutMs: options.timeoutMs, signal });
    const table = renderCheckTable(checks);
    if (options.liveOnly) {
      process.stderr.write(table);
      selected = all.filter((_, i) => checks[i]!.state === 'up');
      if (selected.length === 0) {
        process.stderr.write(`inventory: no runner is up (${checks.map((c) => c.name).join(', ')})\n`);
        return 1;
      }
    } else {
      process.stdout.write(table);
      status = checks.every((c) => c.state === 'up') ? 0 : 1;
    }
  }
  const printsFormat = !options.check || options.liveOnly;
  const needsHosts = options.outDir !== undefined || (printsFormat && options.format !== 'json');
  const hosts = needsHosts ? await resolveHosts(selected, { signal }) : [];
  warnUnpinned(hosts);
  if (printsFormat) process.stdout.write(render(options.format, selected, hosts));
  if (options.outDir !== undefined) {
    const files = await writeOutDir(options.outDir, hosts, { signal });
    process.stderr.write(`inventory: wrote ${files.machines}, ${files.sshConfig} and ${files.knownHosts} (${hosts.length} hosts)\n`);
  }
  return status;
}

// Run the bin: load, probe if asked, print and write; resolves with the exit code.
export async function main(argv = process.argv.slice(2)): Promise<number> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => controller.abort(new TgError('E_ABORTED', `inventory: stopped by ${signal}`));
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, stop);
  try {
    return await run(options, controller.signal);
  } finally {
    for (const s of signals) process.off(s, stop);
  }
}
