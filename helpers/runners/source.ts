// Where a runner list comes from: `@file` (JSON, or a Nix machines file when it is not JSON)
// or `machines:file`. Inline JSON needs no reading and stays with choose-server.
import { readFileSync, statSync } from 'node:fs';
import { jsonPath } from '../runenv/getters.ts';
import { TgError } from '../shared/error.ts';
import { parseMachinesFile, type MachineExtra } from './machines-file.ts';

/** A runner list read from a file, not yet validated; `value` is what the runner schema checks. */
export type RunnerSource =
  | { kind: 'json'; file: string; value: unknown }
  | { kind: 'machines'; file: string; value: Array<{ name: string; arch?: string }>; lines: number[]; extras: MachineExtra[] };

// The most bytes of a runners file we read, as for inline `remote-runners`: a list of hosts, not data.
const MAX_FILE_BYTES = 256 * 1024;
const MACHINES_PREFIX = 'machines:';

// Whether `spec` names a file (`@file` or `machines:file`) rather than holding inline JSON.
export function isRunnerFileSpec(spec: string): boolean {
  return spec.startsWith('@') || spec.startsWith(MACHINES_PREFIX);
}

function readText(file: string): string {
  let size: number;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) throw new TgError('E_PARAM', `${file}: not a regular file`);
    size = stats.size;
  } catch (error) {
    if (error instanceof TgError) throw error;
    throw new TgError('E_PARAM', `${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  if (size > MAX_FILE_BYTES) throw new TgError('E_PARAM', `${file}: ${size} bytes is larger than the ${MAX_FILE_BYTES} allowed for a runners file`);
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new TgError('E_PARAM', `${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
}

// Read the file `spec` names; a file whose first character is `[` or `{` is JSON, any other a machines file.
export function readRunnerSource(spec: string): RunnerSource {
  const forceMachines = spec.startsWith(MACHINES_PREFIX);
  const file = forceMachines ? spec.slice(MACHINES_PREFIX.length) : spec.slice(1);
  if (file === '') throw new TgError('E_PARAM', `${JSON.stringify(spec)}: expected a file name after "${forceMachines ? MACHINES_PREFIX : '@'}"`);
  const text = readText(file);
  if (!forceMachines && /^\s*[[{]/.test(text)) {
    try {
      return { kind: 'json', file, value: JSON.parse(text) };
    } catch (error) {
      throw new TgError('E_PARAM', `${file}: invalid JSON: ${withoutSnippet((error as Error).message)}`, { cause: error });
    }
  }
  const machines = parseMachinesFile(text, file);
  return {
    kind: 'machines',
    file,
    value: machines.map((m) => m.runner),
    lines: machines.map((m) => m.line),
    extras: machines.map((m) => m.extra),
  };
}

// JSON.parse's message without the piece of the input it quotes.
function withoutSnippet(message: string): string {
  return message.replace(/, ".*" is not valid JSON$/s, ' (not valid JSON)').replace(/\r?\n/g, '\\n');
}

const MACHINE_FIELDS: Record<string, string> = { name: 'host', arch: 'system' };

// Where in the file a validation issue at `path` (into `source.value`) is: `file at [1].arch`, `file line 3, system`.
export function sourceLocation(source: RunnerSource, path: ReadonlyArray<PropertyKey>): string {
  if (source.kind === 'json') return path.length > 0 ? `${source.file} at ${jsonPath(path).replace(/^\./, '')}` : source.file;
  const [index, key] = path;
  if (typeof index !== 'number') return source.file;
  const line = `${source.file} line ${source.lines[index] ?? '?'}`;
  return key === undefined ? line : `${line}, ${MACHINE_FIELDS[String(key)] ?? String(key)}`;
}
