// Resolve an SSH host alias exactly as the user's OpenSSH does, through `ssh -G`.
//
// Honoured: HostName, Port, User, IdentityFile (~, ${VAR} and %-tokens expanded),
// IdentitiesOnly, IdentityAgent, UserKnownHostsFile, GlobalKnownHostsFile, HostKeyAlias,
// ConnectTimeout (the whole handshake's limit), ServerAliveInterval, ServerAliveCountMax,
// AddressFamily, ProxyCommand and ProxyJump. REMOTE_RUNNER_SSH_CONFIG names an ssh_config
// file to use instead of ~/.ssh/config and /etc/ssh/ssh_config (it is passed to ssh as -F,
// for `ssh -G` and for the ssh that makes a ProxyJump hop).
//
// Not honoured, and why:
// - StrictHostKeyChecking, CheckHostIP, UpdateHostKeys, VerifyHostKeyDNS, HashKnownHosts:
//   host keys are checked against the pinned known_hosts entries only, never learnt.
// - KnownHostsCommand, RevokedHostKeys (only `@revoked` lines count), CertificateFile,
//   PKCS11Provider, SecurityKeyProvider, `@cert-authority` host keys: ssh2 has no
//   certificates or hardware keys; such a host is refused or its key skipped, never trusted.
// - PreferredAuthentications, PasswordAuthentication, KbdInteractiveAuthentication,
//   GSSAPIAuthentication, HostbasedAuthentication, PubkeyAuthentication, BatchMode,
//   NumberOfPasswordPrompts, AddKeysToAgent: we log in with public keys and never prompt.
// - Ciphers, KexAlgorithms, MACs, HostKeyAlgorithms, PubkeyAcceptedAlgorithms, RekeyLimit,
//   Compression: ssh2 negotiates its own algorithms (host key types pinned first).
// - BindAddress, BindInterface, IPQoS, TCPKeepAlive, ConnectionAttempts: the connection is
//   made once, from the default address; SSH keepalives notice a dead peer.
// - ProxyUseFdpass: a ProxyCommand must speak SSH on its stdin and stdout (refused if set).
// - ControlMaster, ControlPath, ControlPersist: each run opens its own connection.
// - CanonicalizeHostname and friends: ssh -G has already applied them to HostName.
// - Forwards (LocalForward, RemoteForward, DynamicForward, ForwardAgent, ForwardX11),
//   RequestTTY, RemoteCommand, SessionType, SendEnv, SetEnv, LocalCommand, EscapeChar,
//   LogLevel: they shape an interactive session, not how to reach the host.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { hostname as localHostname, userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { expandEnv, expandTokens } from './tokens.ts';

/** One ProxyJump hop, as ssh -G prints it (`[user@]host[:port]`, numeric hosts in brackets). */
export interface JumpHop {
  spec: string;
  user?: string;
  host: string;
  port?: number;
}

/** Everything needed to connect to a host alias, as OpenSSH would. */
export interface SshTarget {
  alias: string;
  hostname: string;
  port: number;
  user: string;
  /** Expanded paths of the identity files that exist, in OpenSSH's order. */
  identityFiles: string[];
  /** Offer only the identity files' keys (agent keys only when they match one of them). */
  identitiesOnly?: boolean;
  /** IdentityAgent: the agent's socket path, or `none`; unset means SSH_AUTH_SOCK when connecting. */
  identityAgent?: string;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hostKeyAlias?: string;
  strictHostKeyChecking: string;
  connectTimeoutMs?: number;
  serverAliveIntervalMs?: number;
  serverAliveCountMax?: number;
  addressFamily?: 'inet' | 'inet6';
  /** ProxyCommand, its %h %p %r %n tokens left for when it runs. */
  proxyCommand?: string;
  /** ProxyJump hops, the first one first. */
  proxyJump?: JumpHop[];
  /** The ssh_config file given to ssh with -F, if any. */
  configFile?: string;
}

/** Options of resolveSshTarget. */
export interface ResolveOptions {
  signal?: AbortSignal;
  /** An ssh_config file used instead of the user's and the system's (ssh -F); defaults to $REMOTE_RUNNER_SSH_CONFIG. */
  configFile?: string;
}

const RESOLVE_TIMEOUT_MS = 10_000;
const aliasPattern = /^[A-Za-z0-9._-]+$/;
// [user@]host[:port]; the user is everything before the last @, a numeric host is in brackets.
const hopPattern = /^(?:(.+)@)?(\[[^\]]+\]|[^[\]:@\s]+)(?::(\d{1,5}))?$/;

const seconds = z.coerce.number().int().nonnegative();
const fileList = z.string().transform((value) => value.split(/\s+/).filter((file) => file !== '' && file !== 'none'));

// The options of `ssh -G` this package uses; each key holds every value ssh printed for it.
// The first value printed for a key that ssh -G always prints.
const first = <T extends z.ZodType>(value: T) => z.array(value).min(1, 'missing').transform((v) => v[0]!);
const optional = <T extends z.ZodType>(value: T) => z.array(value).optional().transform((v) => v?.[0]);

const hop = z.string().transform((spec, ctx): JumpHop => {
  const match = hopPattern.exec(spec);
  const host = match?.[2]?.replace(/^\[(.*)\]$/, '$1');
  const port = match?.[3] === undefined ? undefined : Number(match[3]);
  if (!match || !host || host.startsWith('-') || (port !== undefined && (port < 1 || port > 65535))) {
    ctx.addIssue({ code: 'custom', message: `expected [user@]host[:port] hops, got ${JSON.stringify(spec)}` });
    return z.NEVER;
  }
  return { spec, host, ...(match[1] !== undefined ? { user: match[1] } : {}), ...(port !== undefined ? { port } : {}) };
});

const sshG = z.object({
  hostname: first(z.string().min(1)),
  port: first(z.coerce.number().int().min(1).max(65535)),
  user: first(z.string().min(1)),
  identityfile: z.array(z.string()).default([]),
  identitiesonly: optional(z.enum(['yes', 'no', 'true', 'false'])).transform((v) => v === 'yes' || v === 'true'),
  identityagent: optional(z.string().min(1)),
  userknownhostsfile: z.array(fileList).default([]).transform((v) => v.flat()),
  globalknownhostsfile: z.array(fileList).default([]).transform((v) => v.flat()),
  hostkeyalias: optional(z.string().min(1)),
  stricthostkeychecking: first(z.string()),
  connecttimeout: optional(z.union([z.literal('none'), seconds])).transform((v) => (typeof v === 'number' && v > 0 ? v * 1000 : undefined)),
  serveraliveinterval: optional(seconds).transform((v) => (v ? v * 1000 : undefined)),
  serveralivecountmax: optional(seconds),
  addressfamily: optional(z.enum(['any', 'inet', 'inet6'])).transform((v) => (v === 'any' ? undefined : v)),
  batchmode: optional(z.string()).transform((v) => v === 'yes'),
  proxycommand: optional(z.string().min(1)).transform((v) => (v === 'none' ? undefined : v)),
  proxyusefdpass: optional(z.string()).transform((v) => v === 'yes'),
  proxyjump: optional(z.string().min(1))
    .transform((v) => (v === 'none' ? undefined : v?.split(',')))
    .pipe(z.array(hop).optional()),
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

type SshG = z.infer<typeof sshG>;

// The tokens ssh expands in IdentityFile (ssh -G prints it unexpanded).
function identityFileTokens(alias: string, g: SshG): Record<string, string> {
  const me = userInfo();
  const local = localHostname();
  const jump = g.proxyjump?.at(-1)?.host ?? '';
  const connection = createHash('sha1').update(`${local}${g.hostname}${g.port}${g.user}${jump}`).digest('hex');
  return {
    C: connection,
    d: me.homedir,
    h: g.hostname,
    i: String(me.uid),
    j: jump,
    k: g.hostkeyalias ?? alias,
    L: local.split('.')[0]!,
    l: local,
    n: alias,
    p: String(g.port),
    r: g.user,
    u: me.username,
  };
}

// IdentityAgent as ssh -G printed it (already expanded): a socket path, `none`, or
// SSH_AUTH_SOCK and `$NAME`, which name the environment variable that holds the path.
function identityAgent(value: string | undefined): string | undefined {
  if (value === undefined || value === 'SSH_AUTH_SOCK') return undefined;
  if (value.startsWith('$')) return process.env[value.slice(1)] || 'none';
  return expandTilde(value);
}

// Resolve `alias` by running `ssh -G <alias>` (no shell); works without HOME or SSH_AUTH_SOCK.
export async function resolveSshTarget(alias: string, options: ResolveOptions = {}): Promise<SshTarget> {
  const { signal } = options;
  signal?.throwIfAborted();
  if (alias.startsWith('-') || !aliasPattern.test(alias)) {
    throw new TgError('E_SSH', `ssh host alias ${JSON.stringify(alias)} is not valid: use only A-Z a-z 0-9 . _ - and do not start with -`);
  }
  const configSetting = options.configFile ?? process.env.REMOTE_RUNNER_SSH_CONFIG;
  const configFile = configSetting ? resolvePath(configSetting) : undefined;
  const command = configFile ? `ssh -F ${configFile} -G ${alias}` : `ssh -G ${alias}`;
  const result = await execa('ssh', [...(configFile ? ['-F', configFile] : []), '-G', alias], {
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
    throw new TgError('E_SSH', `${command}: cannot resolve the host alias: ${why}`, { cause: result });
  }
  const parsed = sshG.safeParse(parseSshG(result.stdout));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TgError('E_SSH', `${command}: unexpected output for '${String(issue.path[0] ?? '?')}': ${issue.message}`, { cause: parsed.error });
  }
  const g = parsed.data;
  if (g.proxycommand !== undefined && g.proxyusefdpass) {
    throw new TgError('E_SSH', `${command}: ProxyUseFdpass yes is not supported: the ProxyCommand must speak SSH on its stdin and stdout`);
  }
  const tokens = identityFileTokens(alias, g);
  const identityFiles: string[] = [];
  for (const raw of g.identityfile) {
    const where = `${command}: IdentityFile ${raw}`;
    const file = expandTokens(expandEnv(expandTilde(raw), where), tokens, where);
    if (!identityFiles.includes(file) && (await isFile(file))) identityFiles.push(file);
  }
  const agent = identityAgent(g.identityagent);
  return {
    alias,
    hostname: g.hostname,
    port: g.port,
    user: g.user,
    identityFiles,
    identitiesOnly: g.identitiesonly,
    ...(agent !== undefined ? { identityAgent: agent } : {}),
    userKnownHostsFiles: g.userknownhostsfile.map(expandTilde),
    globalKnownHostsFiles: g.globalknownhostsfile.map(expandTilde),
    ...(g.hostkeyalias !== undefined ? { hostKeyAlias: g.hostkeyalias } : {}),
    strictHostKeyChecking: g.stricthostkeychecking,
    ...(g.connecttimeout !== undefined ? { connectTimeoutMs: g.connecttimeout } : {}),
    ...(g.serveraliveinterval !== undefined && !(g.batchmode && g.serveraliveinterval === BATCH_MODE_SERVER_ALIVE_MS)
      ? { serverAliveIntervalMs: g.serveraliveinterval }
      : {}),
    ...(g.serveralivecountmax !== undefined ? { serverAliveCountMax: g.serveralivecountmax } : {}),
    ...(g.addressfamily !== undefined ? { addressFamily: g.addressfamily } : {}),
    ...(g.proxycommand !== undefined ? { proxyCommand: g.proxycommand } : {}),
    ...(g.proxyjump !== undefined ? { proxyJump: g.proxyjump } : {}),
    ...(configFile !== undefined ? { configFile } : {}),
  };
}
