// Locate the app an instance runs: a Nix build's per-system closure, or this source tree.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import type { NixSystem } from '../runners/runners.ts';

const storePath = z.string().regex(/^\/nix\/store\/[0-9a-z]{32}-[^/]+$/, 'expected a /nix/store path');

export const artifactsSchema = z.object({
  version: z.literal(1),
  attr: z.string().optional(),
  systems: z.record(z.string(), z.object({ drvPath: storePath, outPath: storePath })),
});

export type Artifacts = z.output<typeof artifactsSchema>;

/** The app for one system. */
export type App =
  | { kind: 'nix'; system: string; drvPath: string; outPath: string; bin: string }
  | { kind: 'source'; root: string; bin: string };

// Read and validate the job description the Nix build puts next to the runner.
export async function loadArtifacts(file: string): Promise<Artifacts> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new TgError('E_BUILD', `${file}: cannot read the job description: ${(error as Error).message}`, { cause: error });
  }
  const parsed = artifactsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_BUILD', `${file}: ${issue.path.join('.')}: ${issue.message}`, { cause: parsed.error });
  }
  return parsed.data;
}

// The app for `system`; without a job description, the plan in this source tree.
export function appFor(artifacts: Artifacts | undefined, system: NixSystem): App {
  if (!artifacts) {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    return { kind: 'source', root, bin: `${root}bin/plan.js` };
  }
  const entry = artifacts.systems[system];
  if (!entry) {
    throw new TgError('E_BUILD', `no app is built for ${system} (the job description has: ${Object.keys(artifacts.systems).join(', ')})`);
  }
  return { kind: 'nix', system, ...entry, bin: `${entry.outPath}/bin/plan` };
}
