// Resolve an SSH host alias exactly as the user's OpenSSH does, through `ssh -G`.
import { stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { execa } from 'execa';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';

/** Everything needed to connect to a host alias, as OpenSSH would. */
export interface SshTarget {
  alias: string;
  hostname: string;
  port: number;
  user: string;
  /** Expanded paths of the identity files that exist, in OpenSSH's order. */
  identityFiles: string[];
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hostKeyAlias?: string;
  strictHostKeyChecking: string;
  connectTimeoutMs?: number;
  serverAliveIntervalMs?: number;
}

const RESOLVE_TIMEOUT_MS = 10_000;
const aliasPattern = /^[A-Za-z0-9._-]+$/;

const seconds = z.coerce.number().int().nonnegative();
const fileList = z.string().transform((value) => value.split(/\s+/).filter((file) => file !== '' && file !== 'none'));

// The options of `ssh -G` this package uses; each key holds every value ssh printed for it.
// The first value printed for a key that ssh -G always prints.
const first = <T extends z.ZodType>(value: T) => z.array(value).min(1, 'missing').transform((v) => v[0]!);

const sshG = z.object({
  hostname: first(z.string().min(1)),
  port: first(z.coerce.number().int().min(1).max(65535)),
  user: first(z.string().min(1)),
  identityfile: z.array(z.string()).default([]),
  userknownhostsfile: z.array(fileList).default([]).transform((v) => v.flat()),
  globalknownhostsfile: z.array(fileList).default([]).transform((v) => v.flat()),
  hostkeyalias: z.array(z.string().min(1)).optional().transform((v) => v?.[0]),
  stricthostkeychecking: first(z.string()),
  connecttimeout: z
    .array(z.union([z.literal('none'), seconds]))
    .optional()
    .transform((v) => (typeof v?.[0] === 'number' && v[0] > 0 ? v[0] * 1000 : undefined)),
  serveraliveinterval: z
    .array(seconds)
    .optional()
    .transform((v) => (v?.[0] ? v[0] * 1000 : undefined)),
  batchmode: z.array(z.string()).optional().transform((v) => v?.[0] === 'yes'),
});

// With BatchMode and no ServerAliveInterval, ssh -G prints OpenSSH's implicit 300 s; that is
// no setting of the user's, and far too slow to notice a lost host, so it counts as unset.
const BATCH_MODE_SERVER_ALIVE_MS = 300_000;

// Expand a leading `~` to the user's home directory (from the password database, not $HOME).
export function expandTilde(path: string): string {
  if (path === '~' || path.startsWith('~/')) return userInfo().homedir + path.slice(1);
  return path;
}

// `ssh -G` output as key -> values, keys lowercase, in the order printed.
function parseSshG(stdout: string): Record<string, string[]> {
  const options: Record<string, string[]> = {};
  for (const line of stdout.split('\n')) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const key = match[1]!.toLowerCase();
    (options[key] ??= []).push(match[2]!);
  }
  return options;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

// Resolve `alias` by running `ssh -G <alias>` (no shell); works without HOME or SSH_AUTH_SOCK.
export async function resolveSshTarget(alias: string, options: { signal?: AbortSignal } = {}): Promise<SshTarget> {
  const { signal } = options;
  signal?.throwIfAborted();
  if (alias.startsWith('-') || !aliasPattern.test(alias)) {
    throw new TgError('E_SSH', `ssh host alias ${JSON.stringify(alias)} is not valid: use only A-Z a-z 0-9 . _ - and do not start with -`);
  }
  const result = await execa('ssh', ['-G', alias], {
    stdin: 'ignore',
    reject: false,
    timeout: RESOLVE_TIMEOUT_MS,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  signal?.throwIfAborted();
  if (result.failed) {
    const why = result.timedOut
      ? `did not finish within ${RESOLVE_TIMEOUT_MS / 1000} s`
      : result.code === 'ENOENT'
        ? 'the ssh client is not installed (no ssh on PATH)'
        : `exit ${result.exitCode ?? '?'}: ${result.stderr.trim() || result.shortMessage}`;
    throw new TgError('E_SSH', `ssh -G ${alias}: cannot resolve the host alias: ${why}`, { cause: result });
  }
  const parsed = sshG.safeParse(parseSshG(result.stdout));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_SSH', `ssh -G ${alias}: unexpected output for '${String(issue.path[0] ?? '?')}': ${issue.message}`, { cause: parsed.error });
  }
  const g = parsed.data;
  const identityFiles: string[] = [];
  for (const file of g.identityfile.map(expandTilde)) {
    if (!identityFiles.includes(file) && (await isFile(file))) identityFiles.push(file);
  }
  return {
    alias,
    hostname: g.hostname,
    port: g.port,
    user: g.user,
    identityFiles,
    userKnownHostsFiles: g.userknownhostsfile.map(expandTilde),
    globalKnownHostsFiles: g.globalknownhostsfile.map(expandTilde),
    ...(g.hostkeyalias !== undefined ? { hostKeyAlias: g.hostkeyalias } : {}),
    strictHostKeyChecking: g.stricthostkeychecking,
    ...(g.connecttimeout !== undefined ? { connectTimeoutMs: g.connecttimeout } : {}),
    ...(g.serveraliveinterval !== undefined && !(g.batchmode && g.serveraliveinterval === BATCH_MODE_SERVER_ALIVE_MS)
      ? { serverAliveIntervalMs: g.serveraliveinterval }
      : {}),
  };
}
