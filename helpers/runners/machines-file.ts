// Nix machines files (`/etc/nix/machines`, `--builders @file`): one build machine per line.
import { TgError, quoteShort } from '../shared/error.ts';
import { keyTypeOf } from '../shared/ssh-key.ts';

/** What a machines line says beyond the runner's host and system; every field is optional. */
export interface MachineExtra {
  protocol?: 'ssh' | 'ssh-ng';
  user?: string;
  /** Every system of the line; the first is the runner's `arch`. */
  systems?: string[];
  identityFile?: string;
  maxJobs?: number;
  speedFactor?: number;
  supportedFeatures?: string[];
  mandatoryFeatures?: string[];
  /** The pinned public host key as an OpenSSH line without comment: `ssh-ed25519 AAAA…`. */
  hostKey?: string;
}

/** One machine of a machines file, not yet validated as a runner. */
export interface MachineLine {
  line: number;
  runner: { name: string; arch?: string };
  extra: MachineExtra;
}

const FIELDS = ['URI', 'systems', 'SSH identity file', 'max jobs', 'speed factor', 'supported features', 'mandatory features', 'host key'];
const LOCAL_URIS = new Set(['localhost', 'local']);
const userPattern = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

// A field's value, or undefined when it is absent or `-` (Nix's "unset").
function field(fields: string[], index: number): string | undefined {
  const value = fields[index];
  return value === undefined || value === '' || value === '-' ? undefined : value;
}

function list(value: string | undefined): string[] | undefined {
  const items = value?.split(',').filter(Boolean);
  return items && items.length > 0 ? items : undefined;
}

// The host and user of a store URI: `ssh://[user@]host`, `ssh-ng://…`, a bare `[user@]host`, or localhost.
function parseUri(uri: string, where: string): { name: string; user?: string; protocol?: 'ssh' | 'ssh-ng' } {
  if (LOCAL_URIS.has(uri)) return { name: 'localhost' };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/.exec(uri);
  if (scheme && scheme[1] !== 'ssh' && scheme[1] !== 'ssh-ng') {
    throw new TgError('E_PARAM', `${where}: store URI ${quoteShort(uri)} is not an SSH store: expected ssh://, ssh-ng://, a host name or localhost`);
  }
  const rest = scheme ? scheme[2]! : uri;
  if (/[?/]/.test(rest)) throw new TgError('E_PARAM', `${where}: store URI ${quoteShort(uri)} has a path or ?parameters, which are not supported`);
  const at = rest.lastIndexOf('@');
  const user = at >= 0 ? rest.slice(0, at) : undefined;
  const host = rest.slice(at + 1);
  if (user !== undefined && !userPattern.test(user)) throw new TgError('E_PARAM', `${where}: user ${quoteShort(user)} in the store URI is not a valid user name`);
  if (/[[\]:]/.test(host)) {
    throw new TgError('E_PARAM', `${where}: store URI ${quoteShort(uri)}: ports and IPv6 addresses are not supported here; give the host an alias with HostName and Port in ssh_config`);
  }
  return { name: host, ...(user !== undefined ? { user } : {}), ...(scheme ? { protocol: scheme[1] as 'ssh' | 'ssh-ng' } : {}) };
}

// Decode Nix's host key field: base64 of an OpenSSH public key line (`type blob [comment]`).
function parseHostKey(value: string, where: string): string {
  const fail = (): never => {
    throw new TgError('E_PARAM', `${where}: host key ${quoteShort(value)}: expected the base64 of an OpenSSH public key line such as "ssh-ed25519 AAAA…"`);
  };
  if (!base64Pattern.test(value)) return fail();
  const [type, blob] = Buffer.from(value, 'base64').toString('utf8').trim().split(/\s+/);
  if (type === undefined || blob === undefined || !base64Pattern.test(blob) || keyTypeOf(Buffer.from(blob, 'base64')) !== type) return fail();
  return `${type} ${blob}`;
}

function parseCount(value: string | undefined, name: string, where: string, pattern: RegExp): number | undefined {
  if (value === undefined) return undefined;
  if (!pattern.test(value) || !(Number(value) > 0 || (name === 'max jobs' && Number(value) === 0))) {
    throw new TgError('E_PARAM', `${where}: ${name} ${quoteShort(value)} is not a ${name === 'max jobs' ? 'whole number' : 'positive number'}`);
  }
  return Number(value);
}

// Parse one non-empty line (comments already stripped) of `file`.
function parseLine(text: string, file: string, line: number): MachineLine {
  const where = `${file} line ${line}`;
  const fields = text.split(/\s+/);
  if (fields.length > FIELDS.length) {
    throw new TgError('E_PARAM', `${where}: ${fields.length} fields, but a machines line has at most ${FIELDS.length} (${FIELDS.join(', ')})`);
  }
  const uri = parseUri(fields[0]!, where);
  const systems = list(field(fields, 1));
  if (systems === undefined && uri.name !== 'localhost') {
    throw new TgError('E_PARAM', `${where}: ${quoteShort(uri.name)} has no system ("-" or missing); only localhost may leave it out`);
  }
  const hostKey = field(fields, 7);
  const extra: MachineExtra = {
    ...(uri.protocol ? { protocol: uri.protocol } : {}),
    ...(uri.user !== undefined ? { user: uri.user } : {}),
    ...(systems ? { systems } : {}),
  };
  const identityFile = field(fields, 2);
  if (identityFile !== undefined) extra.identityFile = identityFile;
  const maxJobs = parseCount(field(fields, 3), 'max jobs', where, /^\d+$/);
  if (maxJobs !== undefined) extra.maxJobs = maxJobs;
  const speedFactor = parseCount(field(fields, 4), 'speed factor', where, /^\d+(\.\d+)?$/);
  if (speedFactor !== undefined) extra.speedFactor = speedFactor;
  const supported = list(field(fields, 5));
  if (supported) extra.supportedFeatures = supported;
  const mandatory = list(field(fields, 6));
  if (mandatory) extra.mandatoryFeatures = mandatory;
  if (hostKey !== undefined) extra.hostKey = parseHostKey(hostKey, where);
  return { line, runner: { name: uri.name, ...(systems ? { arch: systems[0]! } : {}) }, extra };
}

// Parse the text of a machines file; `#` starts a comment, blank lines are skipped, errors name the file and line.
export function parseMachinesFile(text: string, file: string): MachineLine[] {
  const machines: MachineLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const content = raw.replace(/#.*$/, '').trim();
    if (content !== '') machines.push(parseLine(content, file, index + 1));
  });
  return machines;
}
