// What tg-run runs, built from CLI flags or from a composition file.
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { findTestCase, loadManifest, parseTomlFile, sectionOf, type Manifest } from './manifest.ts';
import { checkInstances, resolveParams } from './params.ts';

const warn = (message: string) => process.stderr.write(`tg-run: warning: ${message}\n`);

export const BUILDERS = ['exec:go', 'exec:ts', 'nix:generic'] as const;
export type Builder = (typeof BUILDERS)[number];

/** One group of identical instances. */
export interface GroupSpec {
  id: string;
  instances: number;
  params: Record<string, string>;
}

/** A fully resolved run. */
export interface RunSpec {
  planDir: string;
  manifest: Manifest;
  plan: string;
  testCase: string;
  builder: Builder;
  builderCfg: Record<string, unknown>;
  runCfg: Record<string, unknown>;
  groups: GroupSpec[];
  runId: string;
  /** A build to use instead of building: a Nix output path (or the plan dir for exec:ts). */
  useBuild?: string;
}

// A run id shaped like Testground's: 20 lowercase base32hex characters.
export function newRunId(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuv';
  return [...randomBytes(20)].map((b) => alphabet[b % 32]).join('');
}

// Parse a Go-style duration: 90s, 5m, 1h30m, 250ms.
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new TgError('E_USAGE', `--timeout ${JSON.stringify(text)}: expected a duration such as 90s, 5m or 1h30m`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

function asBuilder(value: string): Builder {
  if (!(BUILDERS as readonly string[]).includes(value)) {
    throw new TgError('E_USAGE', `builder ${JSON.stringify(value)} is not supported (supported: ${BUILDERS.join(', ')})`);
  }
  return value as Builder;
}

interface SingleOptions {
  planDir: string;
  testCase: string;
  instances?: number;
  builder?: string;
  params: Record<string, string>;
  runCfg: Record<string, string>;
}

// Resolve `tg-run single` flags against the plan's manifest.
export async function singleSpec(o: SingleOptions): Promise<RunSpec> {
  const planDir = resolve(o.planDir);
  const manifest = await loadManifest(planDir);
  const tc = findTestCase(manifest, o.testCase);
  const instances = o.instances ?? tc.instances.default ?? tc.instances.min;
  checkInstances(tc, instances);
  const builder = asBuilder(o.builder ?? manifest.defaults.builder ?? 'nix:generic');
  return runSpec(planDir, manifest, tc.name, builder, o.runCfg, [{ id: 'single', instances, params: resolveParams(tc, o.params, warn) }]);
}

// Assemble a RunSpec; the runner's settings are the manifest's, overridden by `runCfg`.
function runSpec(planDir: string, manifest: Manifest, testCase: string, builder: Builder, runCfg: Record<string, unknown>, groups: GroupSpec[]): RunSpec {
  return {
    planDir,
    manifest,
    plan: manifest.name,
    testCase,
    builder,
    builderCfg: sectionOf(manifest, 'builders', builder),
    runCfg: { ...sectionOf(manifest, 'runners', 'local:exec'), ...runCfg },
    groups,
    runId: newRunId(),
  };
}

const params = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({});
const compositionSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string().optional() }).optional(),
  global: z.looseObject({
    plan: z.string().min(1),
    case: z.string().min(1),
    builder: z.string().optional(),
    runner: z.string().optional(),
    total_instances: z.number().int().min(1).optional(),
    run_config: z.record(z.string(), z.unknown()).optional(),
    run: z.looseObject({ test_params: params }).optional(),
  }),
  groups: z
    .array(
      z.looseObject({
        id: z.string().min(1),
        instances: z.looseObject({ count: z.number().int().min(1) }),
        run: z.looseObject({ test_params: params }).optional(),
      }),
    )
    .min(1),
});

// Resolve a composition file; the plan dir defaults to the file's directory.
export async function compositionSpec(o: { file: string; planDir?: string; builder?: string; params: Record<string, string> }): Promise<RunSpec> {
  const file = resolve(o.file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TgError('E_MANIFEST', `${file}: cannot read the composition: ${(error as Error).message}`, { cause: error });
  }
  const comp = parseTomlFile(file, text, compositionSchema);
  if (comp.global.runner && comp.global.runner !== 'local:exec') {
    throw new TgError('E_MANIFEST', `${file}: global.runner ${JSON.stringify(comp.global.runner)}: tg-run emulates local:exec only`);
  }
  const planDir = resolve(o.planDir ?? dirname(file));
  const manifest = await loadManifest(planDir);
  if (manifest.name !== comp.global.plan) {
    throw new TgError('E_MANIFEST', `${file}: global.plan is ${JSON.stringify(comp.global.plan)} but ${planDir}/manifest.toml is plan ${JSON.stringify(manifest.name)}`);
  }
  const tc = findTestCase(manifest, comp.global.case);
  const total = comp.groups.reduce((n, g) => n + g.instances.count, 0);
  if (comp.global.total_instances !== undefined && comp.global.total_instances !== total) {
    throw new TgError('E_MANIFEST', `${file}: global.total_instances is ${comp.global.total_instances} but the groups add up to ${total}`);
  }
  checkInstances(tc, total);
  const builder = asBuilder(o.builder ?? comp.global.builder ?? manifest.defaults.builder ?? 'nix:generic');
  const groups = comp.groups.map((g) => ({
    id: g.id,
    instances: g.instances.count,
    params: resolveParams(tc, { ...comp.global.run?.test_params, ...g.run?.test_params, ...o.params }, warn),
  }));
  return runSpec(planDir, manifest, tc.name, builder, comp.global.run_config ?? {}, groups);
}
