// manifest.toml: the plan's name, builders, runners and test cases, validated.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { jsonPath } from '../runenv/getters.ts';

const paramSchema = z.looseObject({
  type: z.string().default('string'),
  desc: z.string().optional(),
  unit: z.string().optional(),
  options: z.array(z.string()).optional(),
  default: z.unknown().optional(),
});

const testCaseSchema = z.looseObject({
  name: z.string().min(1),
  instances: z.object({ min: z.number().int().min(1), max: z.number().int().min(1), default: z.number().int().min(1).optional() }),
  params: z.record(z.string(), paramSchema).default({}),
});

const manifestSchema = z.looseObject({
  name: z.string().min(1),
  defaults: z.looseObject({ builder: z.string().optional(), runner: z.string().optional() }).default({}),
  builders: z.record(z.string(), z.looseObject({ enabled: z.boolean().optional() })).default({}),
  runners: z.record(z.string(), z.looseObject({ enabled: z.boolean().optional() })).default({}),
  testcases: z.array(testCaseSchema).min(1),
});

export type Manifest = z.output<typeof manifestSchema>;
export type TestCase = z.output<typeof testCaseSchema>;
export type ParamSpec = z.output<typeof paramSchema>;

// Read and validate `<planDir>/manifest.toml`.
export async function loadManifest(planDir: string): Promise<Manifest> {
  const file = join(planDir, 'manifest.toml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TgError('E_MANIFEST', `${file}: cannot read the plan's manifest: ${(error as Error).message}`, { cause: error });
  }
  return parseTomlFile(file, text, manifestSchema);
}

// Parse TOML text and validate it; errors name the file and the key path.
export function parseTomlFile<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    throw new TgError('E_MANIFEST', `${file}: invalid TOML: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_MANIFEST', `${file}: ${jsonPath(issue.path).replace(/^\./, '')}: ${issue.message}`, { cause: parsed.error });
  }
  return parsed.data;
}

// The test case `name`, or an error listing the ones the manifest has.
export function findTestCase(manifest: Manifest, name: string): TestCase {
  const tc = manifest.testcases.find((t) => t.name === name);
  if (!tc) {
    throw new TgError('E_MANIFEST', `plan ${manifest.name} has no test case ${JSON.stringify(name)} (it has: ${manifest.testcases.map((t) => t.name).join(', ')})`);
  }
  return tc;
}

// A builder or runner section's settings, e.g. `[builders."nix:generic"] attr`.
export function sectionOf(manifest: Manifest, kind: 'builders' | 'runners', id: string): Record<string, unknown> {
  return (manifest[kind][id] as Record<string, unknown> | undefined) ?? {};
}
