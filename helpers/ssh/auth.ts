// Which keys to offer a host, in OpenSSH's order: the agent's keys that match an
// IdentityFile, then the agent's other keys unless IdentitiesOnly is set, then the keys of
// the identity files themselves. A key left out is never shown to the host.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, IdentityCallback, ParsedKey, SignCallback, SigningRequestOptions } from 'ssh2';
import { fingerprint } from '../shared/ssh-key.ts';
import type { SshTarget } from './ssh-config.ts';

/** One key to offer: a label for messages, and how ssh2 offers it. */
export interface AuthAttempt {
  label: string;
  method: AnyAuthMethod;
}

/** The keys to offer, in order, and what could not be offered. */
export interface AuthPlan {
  attempts: AuthAttempt[];
  /** Identity files that cannot be offered, each with why. */
  skipped: string[];
  /** Why the agent could not be used, when it could not. */
  agentProblem?: string;
}

const AGENT_TIMEOUT_MS = 5_000;

// One key of a real agent: ssh2 offers every key an agent lists, so each key we mean to
// offer gets an agent of its own, and signing goes to the real agent.
class OneKeyAgent extends ssh2.BaseAgent<ParsedKey> {
  readonly #agent: ssh2.OpenSSHAgent;
  readonly #key: ParsedKey;

  constructor(agent: ssh2.OpenSSHAgent, key: ParsedKey) {
    super();
    this.#agent = agent;
    this.#key = key;
  }

  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    cb(undefined, [this.#key]);
  }

  sign(pubKey: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    if (typeof options === 'function') this.#agent.sign(pubKey, data, options);
    else this.#agent.sign(pubKey, data, options, cb);
  }
}

// The agent's socket: IdentityAgent when set (`none`: no agent), else SSH_AUTH_SOCK.
export function agentSocket(target: SshTarget): string | undefined {
  if (target.identityAgent === 'none') return undefined;
  return target.identityAgent ?? (process.env.SSH_AUTH_SOCK || undefined);
}

// The keys the agent at `socket` holds, within AGENT_TIMEOUT_MS; the connection is always closed.
function listAgentKeys(socket: string, signal: AbortSignal | undefined): Promise<ParsedKey[]> {
  const limit = AbortSignal.timeout(AGENT_TIMEOUT_MS);
  const stop = signal ? AbortSignal.any([signal, limit]) : limit;
  return new Promise<ParsedKey[]>((resolve, reject) => {
    const sock = net.connect(socket);
    const protocol = new ssh2.AgentProtocol(true);
    let settled = false;
    const done = (error: unknown, keys?: ParsedKey[]): void => {
      if (settled) return;
      settled = true;
      stop.removeEventListener('abort', onAbort);
      sock.destroy();
      protocol.destroy();
      if (keys) resolve(keys);
      else reject(error);
    };
    const onAbort = (): void => done(signal?.aborted ? signal.reason : new Error(`no answer within ${AGENT_TIMEOUT_MS / 1000} s`));
    if (stop.aborted) return onAbort();
    stop.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (error: NodeJS.ErrnoException) => done(new Error(error.code ?? error.message)));
    sock.on('close', () => done(new Error('it closed the connection')));
    protocol.on('error', (error: Error) => done(error));
    protocol.pipe(sock).pipe(protocol);
    protocol.getIdentities((error, keys) => done(error, error ? undefined : (keys ?? [])));
  });
}

// The public key in the clear header of an OpenSSH-format private key, which a passphrase does not hide.
function opensshPublicBlob(text: string): Buffer | undefined {
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text)?.[1];
  if (body === undefined) return undefined;
  const raw = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  const magic = Buffer.from('openssh-key-v1\0', 'latin1');
  if (!raw.subarray(0, magic.length).equals(magic)) return undefined;
  let pos = magic.length;
  const field = (): Buffer | undefined => {
    if (pos + 4 > raw.length) return undefined;
    const length = raw.readUInt32BE(pos);
    if (pos + 4 + length > raw.length) return undefined;
    pos += 4 + length;
    return raw.subarray(pos - length, pos);
  };
  // cipher name, KDF name, KDF options, then the number of keys and the first public key
  if (!field() || !field() || !field() || pos + 4 > raw.length || raw.readUInt32BE(pos) < 1) return undefined;
  pos += 4;
  return field();
}

interface Identity {
  file: string;
  /** The public key blob, when it can be known. */
  blob?: Buffer;
  /** The private key, when ssh2 can use it without a passphrase. */
  privateKey?: Buffer;
  problem?: string;
}

// An identity file, and its public key from the file, `<file>.pub` or an OpenSSH key's header, as ssh finds it.
async function loadIdentity(file: string, signal: AbortSignal | undefined): Promise<Identity> {
  let data: Buffer;
  try {
    data = await readFile(file, signal ? { signal } : {});
  } catch (error) {
    signal?.throwIfAborted();
    return { file, problem: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  const parsed = ssh2.utils.parseKey(data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key !== undefined && !(key instanceof Error)) {
    if (key.isPrivateKey()) return { file, blob: key.getPublicSSH(), privateKey: data };
    return { file, blob: key.getPublicSSH(), problem: 'not a private key' };
  }
  const problem = key && /passphrase/i.test(key.message) ? 'needs a passphrase' : 'cannot be parsed';
  let blob = opensshPublicBlob(data.toString('latin1'));
  if (!blob) {
    try {
      const pub = ssh2.utils.parseKey(await readFile(`${file}.pub`, signal ? { signal } : {}));
      const pubKey = Array.isArray(pub) ? pub[0] : pub;
      if (pubKey !== undefined && !(pubKey instanceof Error)) blob = pubKey.getPublicSSH();
    } catch {
      signal?.throwIfAborted();
    }
  }
  return { file, problem, ...(blob ? { blob } : {}) };
}

// The keys to offer `target`, in OpenSSH's order, honouring IdentitiesOnly and IdentityAgent.
export async function planAuth(target: SshTarget, signal: AbortSignal | undefined): Promise<AuthPlan> {
  const username = target.user;
  const identities = await Promise.all(target.identityFiles.map((file) => loadIdentity(file, signal)));
  const plan: AuthPlan = { attempts: [], skipped: [] };
  const others: AuthAttempt[] = [];
  const socket = agentSocket(target);
  if (socket !== undefined) {
    let keys: ParsedKey[] = [];
    try {
      keys = await listAgentKeys(socket, signal);
    } catch (error) {
      signal?.throwIfAborted();
      plan.agentProblem = `the agent at ${socket} cannot be used: ${(error as Error).message}`;
    }
    const agent = new ssh2.OpenSSHAgent(socket);
    for (const key of keys) {
      const blob = key.getPublicSSH();
      const method: AnyAuthMethod = { type: 'agent', username, agent: new OneKeyAgent(agent, key) };
      const index = identities.findIndex((identity) => identity.blob?.equals(blob));
      if (index >= 0) {
        plan.attempts.push({ label: `${identities[index]!.file} (in the agent)`, method });
        identities.splice(index, 1);
      } else if (!target.identitiesOnly) {
        others.push({ label: `agent key ${key.comment || fingerprint(blob)}`, method });
      }
    }
  }
  plan.attempts.push(...others);
  for (const identity of identities) {
    if (identity.privateKey) plan.attempts.push({ label: identity.file, method: { type: 'publickey', username, key: identity.privateKey } });
    else plan.skipped.push(`${identity.file} (${identity.problem})`);
  }
  return plan;
}
