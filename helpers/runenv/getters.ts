// Typed param getters. A missing or malformed param is one E_PARAM line naming it.
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import type { RunEnv } from './runenv.ts';

type Params = Pick<RunEnv, 'params'>;

// Error messages are one line: JSON.parse and zod quote raw input, newlines included.
function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\\n');
}

function raw(env: Params, name: string, fallback: string | undefined): string {
  const value = env.params[name] ?? fallback;
  if (value === undefined) throw new TgError('E_PARAM', `param ${name}: not set, and no default was given`);
  return value;
}

// A string param, or `fallback` when it is not set.
export function stringParam(env: Params, name: string, fallback?: string): string {
  return raw(env, name, fallback);
}

// An integer param (decimal, optionally signed).
export function intParam(env: Params, name: string, fallback?: number): number {
  const value = raw(env, name, fallback?.toString());
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value.trim()))) throw new TgError('E_PARAM', `param ${name}: expected an integer, got ${JSON.stringify(value)}`);
  return Number.parseInt(value, 10);
}

// A boolean param: true/false, 1/0, yes/no (any case).
export function boolParam(env: Params, name: string, fallback?: boolean): boolean {
  const value = raw(env, name, fallback?.toString()).trim().toLowerCase();
  if (['true', '1', 'yes', 't'].includes(value)) return true;
  if (['false', '0', 'no', 'f', ''].includes(value)) return false;
  throw new TgError('E_PARAM', `param ${name}: expected true or false, got ${JSON.stringify(value)}`);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 };

// A size in bytes: `1048576`, `512MiB`, `2GiB`, `1.5GB`.
export function sizeParam(env: Params, name: string, fallback?: number): number {
  const value = raw(env, name, fallback?.toString());
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined || !Number.isSafeInteger(Math.floor(Number(match[1]) * unit))) {
    throw new TgError('E_PARAM', `param ${name}: expected a size such as 1048576, 512MiB or 2GiB, got ${JSON.stringify(value)}`);
  }
  return Math.floor(Number(match[1]) * unit);
}

// Render a zod issue path the way users write JSON paths: `[1].arch`, `.hosts[0]`.
export function jsonPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

// A JSON param validated by `schema`; errors name the param and the JSON path.
export function jsonParam<S extends z.ZodType>(env: Params, name: string, schema: S, fallback?: string): z.output<S> {
  return parseJsonParam(name, raw(env, name, fallback), schema);
}

// Parse `text` as the JSON param `name` and validate it with `schema`.
export function parseJsonParam<S extends z.ZodType>(name: string, text: string, schema: S): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TgError('E_PARAM', oneLine(`param ${name}: invalid JSON: ${(error as Error).message}`), { cause: error });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_PARAM', oneLine(`param ${name}${jsonPath(issue.path)}: ${issue.message}`), { cause: parsed.error });
  }
  return parsed.data;
}
