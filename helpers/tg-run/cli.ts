// tg-run: run a plan like `testground run single|composition --runner local:exec`.
import { parseArgs } from 'node:util';
import { TgError } from '../shared/error.ts';
import { requireUtf8Arguments } from '../shared/utf8.ts';
import { parseKeyValues } from './params.ts';
import { MAX_COPIES_PARAM } from '../remote-runner/params.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildArtifact } from './build.ts';
import { nixArgs } from './builders/nix-generic.ts';
import { dryRun, renderDryRun } from './dry-run.ts';
import { runPlan } from './run.ts';
import { compositionSpec, parseDuration, singleSpec, type RunSpec } from './spec.ts';
import { countLine, renderSummary } from './summary.ts';

const usage = `usage:
  tg-run single --plan <dir> --testcase <name> [--instances <n>] [--test-param k=v]...
                [--builder exec:go|exec:ts|nix:generic] [--run-cfg bin_path=...] [--outputs-dir <dir>]
                [--use-build <path>] [--collect] [--timeout <dur>] [--grace <dur>] [--dry-run]
                [--max-concurrent-copy <n>] [--nix-args='<nix build arguments>'] [--raw]
  tg-run composition -f <composition.toml> [--plan <dir>] [same run flags]`;

const options = {
  plan: { type: 'string' },
  testcase: { type: 'string' },
  instances: { type: 'string' },
  'test-param': { type: 'string', multiple: true },
  'run-cfg': { type: 'string', multiple: true },
  builder: { type: 'string' },
  'outputs-dir': { type: 'string' },
  collect: { type: 'boolean' },
  timeout: { type: 'string' },
  grace: { type: 'string' },
  'influxdb-url': { type: 'string' },
  'use-build': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'max-concurrent-copy': { type: 'string' },
  'nix-args': { type: 'string' },
  raw: { type: 'boolean' },
  file: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    throw new TgError('E_USAGE', `${(error as Error).message}\n${usage}`, { cause: error });
  }
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new TgError('E_USAGE', `${flag} is required\n${usage}`);
  return value;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...extra] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${usage}\n`);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new TgError('E_USAGE', `unexpected arguments: ${extra.join(' ')}\n${usage}`);
  requireUtf8Arguments();
  const params = parseKeyValues('--test-param', values['test-param'] ?? []);
  if (values['max-concurrent-copy'] !== undefined) {
    if (!/^[1-9]\d*$/.test(values['max-concurrent-copy'])) throw new TgError('E_USAGE', `--max-concurrent-copy ${JSON.stringify(values['max-concurrent-copy'])}: expected a whole number above 0`);
    params[MAX_COPIES_PARAM] = values['max-concurrent-copy'];
  }
  let spec: RunSpec;
  if (command === 'single') {
    const instances = values.instances === undefined ? undefined : Number(values.instances);
    if (instances !== undefined && !(Number.isInteger(instances) && instances > 0)) {
      throw new TgError('E_USAGE', `--instances ${JSON.stringify(values.instances)}: expected a whole number above 0`);
    }
    spec = await singleSpec({
      planDir: required(values.plan, '--plan'),
      testCase: required(values.testcase, '--testcase'),
      ...(instances === undefined ? {} : { instances }),
      ...(values.builder === undefined ? {} : { builder: values.builder }),
      params,
      runCfg: parseKeyValues('--run-cfg', values['run-cfg'] ?? []),
    });
  } else if (command === 'composition') {
    spec = await compositionSpec({
      file: required(values.file, '-f'),
      ...(values.plan === undefined ? {} : { planDir: values.plan }),
      ...(values.builder === undefined ? {} : { builder: values.builder }),
      params,
    });
  } else {
    throw new TgError('E_USAGE', `unknown command ${JSON.stringify(command)}\n${usage}`);
  }

  if (values['use-build']) spec.useBuild = values['use-build'];
  const extraNixArgs = nixArgs(values['nix-args']);
  if (values['dry-run']) {
    const workDir = await mkdtemp(join(tmpdir(), `tg-run-${spec.runId}-`));
    try {
      const artifact = await buildArtifact(spec, { signal: AbortSignal.timeout(600_000), workDir, nixArgs: extraNixArgs });
      const plan = await dryRun(spec, artifact);
      process.stdout.write(renderDryRun(plan));
      return plan.hosts.some((h) => h.state === 'unreachable') ? 1 : 0;
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }
  const cancel = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`tg-run: ${signal}: stopping every instance\n`);
    cancel.abort(signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`tg-run: run ${spec.runId}: plan ${spec.plan}, case ${spec.testCase}, builder ${spec.builder}, ${spec.groups.map((g) => `${g.id}×${g.instances}`).join(' ')}\n`);
    const result = await runPlan(spec, {
      outputsDir: values['outputs-dir'] ?? 'outputs',
      ...(values.collect ? { collectDir: process.cwd() } : {}),
      ...(values.timeout ? { timeoutMs: parseDuration(values.timeout) } : {}),
      ...(values.grace ? { graceMs: parseDuration(values.grace) } : {}),
      ...(values['influxdb-url'] ? { influxdbUrl: values['influxdb-url'] } : {}),
      nixArgs: extraNixArgs,
      raw: values.raw ?? false,
      signal: cancel.signal,
    });
    process.stdout.write(`\n${renderSummary(result.results)}\n\n${countLine(result.results)}\n`);
    process.stdout.write(`run ${result.runId}: outputs in ${result.runDir}\n`);
    if (result.collected) process.stdout.write(`collected: ${result.collected}\n`);
    if (result.stopped === 'cancelled') return cancel.signal.reason === 'SIGTERM' ? 143 : 130;
    return result.results.every((r) => r.outcome === 'success') ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
