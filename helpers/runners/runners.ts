// The `remote-runners` param: a non-empty list of `{ name, arch?, build? }`, inline or from a file.
import { z } from 'zod';
import { parseJsonParam } from '../runenv/getters.ts';
import { TgError, quoteShort } from '../shared/error.ts';
import { isRunnerFileSpec, readRunnerSource, sourceLocation, type RunnerSource } from './source.ts';

/** Nix systems we build the app for. */
export const SYSTEMS = ['x86_64-linux', 'aarch64-linux', 'x86_64-darwin', 'aarch64-darwin'] as const;
export type NixSystem = (typeof SYSTEMS)[number];

// An ssh host alias: letters, digits, `.`, `_`, `-`, never a shell metacharacter or an option.
const hostAlias = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/, 'expected an ssh host alias (letters, digits, ".", "_", "-")');

const runnerSchema = z
  .strictObject({
    name: hostAlias,
    arch: z.enum(SYSTEMS, { error: (i) => `expected one of ${SYSTEMS.join(', ')} (got ${typeof i.input === 'string' ? quoteShort(i.input) : typeof i.input})` }).optional(),
    build: z.enum(['local', 'remote']).optional(),
  })
  .refine((r) => r.arch !== undefined || r.name === 'localhost', {
    message: 'arch is required for every host but localhost',
    path: ['arch'],
  });

export const runnersSchema = z.array(runnerSchema).min(1, 'expected at least one runner');

/** One entry of `remote-runners`. */
export type Runner = z.output<typeof runnerSchema>;

/** What happens when there are more instances than runners. */
export const overflowSchema = z.enum(['round-robin', 'first', 'error']);
export type Overflow = z.output<typeof overflowSchema>;

export const RUNNERS_PARAM = 'remote-runners';
export const OVERFLOW_PARAM = 'remote-runners-overflow';

// The most bytes of `remote-runners` we accept: the list is a handful of hosts, not data.
const maxRunnersBytes = 256 * 1024;

// Parse the `remote-runners` param text (inline JSON, `@file` or `machines:file`); errors name the param and the JSON path.
export function parseRunners(text: string): Runner[] {
  if (isRunnerFileSpec(text)) return readRunnersFile(text).runners;
  const bytes = Buffer.byteLength(text);
  if (bytes > maxRunnersBytes) {
    throw new TgError('E_PARAM', `param ${RUNNERS_PARAM}: ${bytes} bytes is larger than the ${maxRunnersBytes} allowed`);
  }
  return parseJsonParam(RUNNERS_PARAM, text, runnersSchema);
}

// Read and validate `@file` (JSON, or a Nix machines file) or `machines:file`; errors name the param, the file and the line.
export function readRunnersFile(spec: string): { runners: Runner[]; source: RunnerSource } {
  let source: RunnerSource;
  try {
    source = readRunnerSource(spec);
  } catch (error) {
    if (!(error instanceof TgError)) throw error;
    throw new TgError(error.code, `param ${RUNNERS_PARAM}: ${error.message}`, { cause: error });
  }
  const parsed = runnersSchema.safeParse(source.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const message = `param ${RUNNERS_PARAM}: ${sourceLocation(source, issue.path)}: ${issue.message}`;
    throw new TgError('E_PARAM', message.replace(/\r?\n/g, '\\n'), { cause: parsed.error });
  }
  return { runners: parsed.data, source };
}

// GOOS and GOARCH of a Nix system, for building Go programs that run there.
export function goPlatform(system: NixSystem): { GOOS: string; GOARCH: string } {
  const [cpu, os] = system.split('-') as [string, string];
  return { GOOS: os, GOARCH: cpu === 'aarch64' ? 'arm64' : 'amd64' };
}

// The Nix system of this machine.
export function localSystem(): NixSystem {
  const cpu = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  const os = process.platform === 'darwin' ? 'darwin' : 'linux';
  return `${cpu}-${os}`;
}
