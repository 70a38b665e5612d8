// Fan-out: a host that holds a closure sends it to the next host directly, so
// the controller's uplink is not the limit (docs/fan-out.md). The credential is
// made for this one copy: a fresh key pair whose public half the target accepts
// only for `nix-store --import`, only from the source's address, only until it
// expires, and only while the controller's channel that installed it is open;
// its private half lives in an ssh-agent on the source for the copy alone.
import { once } from 'node:events';
import ssh2 from 'ssh2';
import { TgError, tail } from '../shared/error.ts';
import { loadKnownHosts } from '../ssh/known-hosts.ts';
import { feederScript, receiverScript } from './stream.ts';
import { pinnedKeys } from '../ssh/resolve.ts';
import type { SshSession } from '../ssh/session.ts';

/** How long a relay key is accepted at most, whatever happens to the run. */
export const RELAY_KEY_LIFETIME_MS = 10 * 60_000;
/** How long installing the key on the target may take. */
const INSTALL_BOUND_MS = 30_000;
/** How long the source may take to reach the target before the relay is given up. */
const CONNECT_BOUND_S = 5;

/** One end of a relay. */
export interface RelayEnd {
  ssh: SshSession;
  alias: string;
}

// Whether another host can reach `target` as this machine does: not through a
// proxy, and not at a loopback address (a tunnel that exists only here).
export function canRelayTo(target: SshSession['target']): boolean {
  if (target.proxyCommand || (target.proxyJump?.length ?? 0) > 0) return false;
  return !/^(127\.|::1$|localhost$|\[::1\]$)/i.test(target.hostname);
}

// Shell words for the single-quoted remote shell.
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Options of relayCopy. */
export interface RelayOptions {
  /** The spool of what the source receives (or received), to follow instead of exporting from its store. */
  sourceSpool?: string;
  /** Where the target keeps what it receives, for the hosts after it. */
  targetSpool?: string;
  signal?: AbortSignal;
}

// Send `paths` (the target's missing ones; the source holds them, or receives
// them into `sourceSpool`) from `source` to `target`. Resolves with how the
// source fed the stream: "from the spool (zstd)" or "from the store".
export async function relayCopy(source: RelayEnd, target: RelayEnd, paths: string[], options: RelayOptions = {}): Promise<string> {
  const { signal } = options;
  const keys = ssh2.utils.generateKeyPairSync('ed25519');
  const tag = `remote-runner-relay-${Math.random().toString(36).slice(2, 12)}`;
  const pinned = pinnedKeys(await loadKnownHosts([...target.ssh.target.userKnownHostsFiles, ...target.ssh.target.globalKnownHostsFiles]), target.ssh.target);
  if (pinned.length === 0) throw new TgError('E_COPY', `relay to ${target.alias}: no pinned host key to give ${source.alias}`);
  const sourceAddress = await addressOf(source, target, signal);
  const authorized = await authorize(target, `${keys.public} ${tag}`, { from: sourceAddress, tag, receiver: receiverScript(options.targetSpool) }, signal);
  try {
    const { hostname, port } = target.ssh.target;
    const knownHosts = pinned.map((key) => `relay-target ${key}`).join('\n');
    // The private key comes first on stdin and goes into an agent only; stdin stays
    // open until the copy is done, and its end (this controller done, or gone)
    // stops the copy and takes the agent and every file with it.
    const script = [
      'set -eu',
      `dir=$(mktemp -d /tmp/${tag}-XXXXXX)`,
      'copy=',
      `cleanup() { set +e; [ -n "$copy" ] && kill -TERM -"$copy"; kill "\${SSH_AGENT_PID:-}"; rm -rf "$dir"; } 2>/dev/null`,
      // A signal, SIGPIPE too (stderr is the channel, gone with the controller), exits through cleanup.
      'trap cleanup EXIT',
      "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM",
      'eval "$(ssh-agent -s -a "$dir/agent")" >/dev/null',
      `sed -u '/END OPENSSH PRIVATE KEY/q' | ssh-add -q -t ${RELAY_KEY_LIFETIME_MS / 1000} - 2>/dev/null`,
      `printf '%s\n' ${quote(knownHosts)} >"$dir/known_hosts"`,
      // The copy runs in a session of its own, so that one kill ends all of it.
      'export dir',
      `setsid sh -c ${quote(
        `{ ${feederScript(paths, options.sourceSpool)}; } | ssh -T -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$dir/known_hosts" -o HostKeyAlias=relay-target ` +
          `-o GlobalKnownHostsFile=/dev/null -o IdentityAgent="$dir/agent" -o ConnectTimeout=${CONNECT_BOUND_S} -o ServerAliveInterval=3 -o ServerAliveCountMax=3 ` +
          `-p ${port} ${quote(`${target.ssh.target.user}@${hostname}`)} import`,
      )} </dev/null 3<&- &`,
      'copy=$!',
      // A background job's stdin is /dev/null; the watch reads the channel through fd 3.
      'exec 3<&0',
      '( cat <&3 >/dev/null; kill -TERM -"$copy" 2>/dev/null ) &',
      'status=0; wait "$copy" || status=$?',
      'copy=',
      'exit "$status"',
    ].join('\n');
    const channel = await source.ssh.exec(`sh -c ${quote(script)}`, signal ? { signal } : {});
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    channel.on('data', () => {});
    const exited = new Promise<number | null>((resolve) => {
      let code: number | null = null;
      channel.once('exit', (c: number | null) => (code = c));
      channel.once('close', () => resolve(code));
    });
    channel.write(keys.private.endsWith('\n') ? keys.private : `${keys.private}\n`);
    const code = await Promise.race([exited, new Promise<'exit'>((resolve) => channel.once('exit', () => resolve('exit')))]);
    channel.end();
    const status = code === 'exit' ? await exited : code;
    if (status !== 0) throw new TgError('E_COPY', `relay from ${source.alias} to ${target.alias} exited ${status}: ${tail(stderr) || 'no message'}`);
    return /feeding (from the spool \((?:zstd|none)\)|from the store)/.exec(stderr)?.[1] ?? 'from the store';
  } finally {
    await authorized.revoke();
  }
}

// The address the target sees the source connect from: the source's address on the route to the target.
async function addressOf(source: RelayEnd, target: RelayEnd, signal?: AbortSignal): Promise<string> {
  const name = quote(target.ssh.target.hostname);
  const script = `a=$(getent ahosts ${name} | awk 'NR==1 {print $1}') && [ -n "$a" ] && ip -o route get "$a" | sed -n 's/.* src \\([^ ]*\\).*/\\1/p'`;
  const result = await source.ssh.run(script, signal ? { signal } : {});
  const address = result.stdout.trim();
  if (!/^[0-9a-fA-F.:]+$/.test(address)) throw new TgError('E_COPY', `relay from ${source.alias}: no route to ${target.alias} (${target.ssh.target.hostname})`);
  return address;
}

// Add the relay key to the target's authorized_keys for as long as the returned
// channel is open (and never past its expiry); revoke() takes it out again. If
// the controller dies, the channel ends, and the target removes the key itself.
async function authorize(
  target: RelayEnd,
  publicKey: string,
  key: { from: string; tag: string; receiver: string },
  signal?: AbortSignal,
): Promise<{ revoke(): Promise<void> }> {
  const { from, tag } = key;
  const expiry = `${new Date(Date.now() + RELAY_KEY_LIFETIME_MS).toISOString().replace(/[-:T]/g, '').slice(0, 12)}Z`;
  // sshd takes \" in an option's value for a quote, and nothing else for an escape.
  const options = `restrict,from="${from}",expiry-time="${expiry}",command="${key.receiver.replace(/"/g, '\\"')}"`;
  const script = [
    'set -eu',
    'f="$HOME/.ssh/authorized_keys"',
    'mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh" && touch "$f"',
    `remove() { ( flock 9; grep -v ${quote(tag)} "$f" >"$f.${tag}" || true; cat "$f.${tag}" >"$f"; rm -f "$f.${tag}" ) 9<"$f"; }`,
    'trap remove EXIT HUP INT TERM',
    `( flock 9; printf '%s\\n' ${quote(`${options} ${publicKey}`)} >>"$f" ) 9<"$f"`,
    'echo ready',
    // Until the controller closes this channel, or goes away.
    'cat >/dev/null',
  ].join('\n');
  const channel = await target.ssh.exec(`sh -c ${quote(script)}`, signal ? { signal } : {});
  channel.stderr.on('data', () => {});
  const closed = once(channel, 'close');
  let said = '';
  await new Promise<void>((resolve, reject) => {
    channel.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('ready\n')) resolve();
    });
    void closed.then(() => reject(new TgError('E_COPY', `relay to ${target.alias}: the key could not be installed`)));
    setTimeout(() => reject(new TgError('E_COPY', `relay to ${target.alias}: the key was not installed within ${INSTALL_BOUND_MS / 1000} s`)), INSTALL_BOUND_MS).unref();
  }).catch((error: unknown) => {
    channel.end();
    throw error;
  });
  return {
    revoke: async () => {
      channel.end();
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    },
  };
}
