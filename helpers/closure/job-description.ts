// The job description: for each Nix system, the app an instance runs and the agent
// that runs it on a remote host, each a store path with its entry program. A Nix
// build writes it next to bin/remote-runner; tg-run writes one for Go and TS plans.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { SYSTEMS, type NixSystem } from '../runners/runners.ts';

export const JOB_VERSION = 2;
/** Where a Nix-built artifact keeps its job description, relative to its out path. */
export const JOB_FILE = 'share/remote-runner/job.json';

const storePath = z.string().regex(/^\/nix\/store\/[0-9a-z]{32}-[A-Za-z0-9+._?=-]+$/, 'expected a /nix/store path');
const drvPath = storePath.refine((p) => p.endsWith('.drv'), 'expected a .drv store path');
const entry = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a path inside the out path (relative, no "..")');

/** One store path and the program in it: the app, or the agent. */
const componentSchema = z.strictObject({
  /** The output path; it must be valid here, or `drvPath` must build it. */
  outPath: storePath,
  /** The derivation that builds it; without one, it can only be copied. */
  drvPath: drvPath.optional(),
  /** The program, relative to the output path: `bin/my-plan`. */
  entry,
  /** Other store paths the program needs at run time that its references do not name. */
  requires: z.array(storePath).optional(),
});

export const jobDescriptionSchema = z.strictObject({
  version: z.literal(JOB_VERSION, { error: (i) => `expected ${JOB_VERSION} (got ${JSON.stringify(i.input)})` }),
  /** The plan's name, for messages. */
  plan: z.string().optional(),
  systems: z
    .partialRecord(z.enum(SYSTEMS, { error: (i) => `expected one of ${SYSTEMS.join(', ')} (got ${JSON.stringify(i.input)})` }), z.strictObject({ app: componentSchema, agent: componentSchema }))
    .refine((systems) => Object.keys(systems).length > 0, 'expected at least one system'),
});

export type JobDescription = z.output<typeof jobDescriptionSchema>;
export type Component = z.output<typeof componentSchema>;
/** The app and the agent for one system. */
export interface SystemJob {
  system: NixSystem;
  app: Component;
  agent: Component;
}

// Read and validate a job description file; errors name the file and the field.
export async function loadJobDescription(file: string): Promise<JobDescription> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new TgError('E_BUILD', `${file}: cannot read the job description: ${(error as Error).message}`, { cause: error });
  }
  return parseJobDescription(raw, file);
}

// Validate a parsed job description; `file` names it in errors.
export function parseJobDescription(raw: unknown, file: string): JobDescription {
  const parsed = jobDescriptionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new TgError('E_BUILD', `${file}: ${field}: ${issue.message}`, { cause: parsed.error });
  }
  return parsed.data;
}

// The app and agent for `system`, or an error listing the systems the description has.
export function jobFor(description: JobDescription, system: NixSystem, file = 'the job description'): SystemJob {
  const entry = description.systems[system];
  if (!entry) {
    throw new TgError('E_BUILD', `${file} has no app for ${system} (it has: ${Object.keys(description.systems).join(', ')})`);
  }
  return { system, app: entry.app, agent: entry.agent };
}

// The absolute path of a component's program.
export function programOf(component: Component): string {
  return `${component.outPath}/${component.entry}`;
}
