// Probe runners: SSH reachable, Nix present, and the system the runner claims. Each host has
// its own deadline, and all hosts are probed at once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { localSystem } from '../runners/runners.ts';
import { REMOTE_NIX_PATH } from './remote-shell.ts';
import { knownHostsName } from './known-hosts.ts';
import type { SshTarget } from './ssh-config.ts';
import { openSsh } from './session.ts';
import { TgError, tail } from '../shared/error.ts';
import type { InventoryEntry } from '../runners/entries.ts';
import { targetFor } from './resolve.ts';

/** The outcome of probing one runner. */
export interface HostCheck {
  name: string;
  /** The system the runner must be: its `arch`, or this machine's for localhost without one. */
  arch: string;
  /** `ok` once logged in, `failed` if not, `local` for localhost. */
  ssh: 'ok' | 'failed' | 'local';
  /** The Nix version found (`2.18.1`); undefined when nix-store is missing or the host was not reached. */
  nix: string | undefined;
  /** The Nix system the host reports (from `uname -m` and `uname -s`), once reached. */
  system: string | undefined;
  state: 'up' | 'down';
  /** Why the host is down, or its `nix-store --version` line when it is up. */
  detail: string;
  ms: number;
}

/** Options of a probe: the deadline per host, and the caller's cancellation. */
export interface CheckOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

// One shell line for local and remote hosts alike: the machine, the kernel, and nix-store's version.
export const PROBE_SCRIPT = [
  REMOTE_NIX_PATH,
  String.raw`printf 'machine=%s\nkernel=%s\n' "$(uname -m)" "$(uname -s)"`,
  // The version is read from stdout only: Nix warns on stderr (e.g. about a missing nixbld group).
  String.raw`if ! command -v nix-store >/dev/null 2>&1; then echo 'nix=-'; elif v=$(nix-store --version 2>/dev/null); then printf 'nix=%s\n' "$v"; else printf 'nix-failed=%s\n' "$(nix-store --version 2>&1 >/dev/null)" | tr '\n' ' '; echo; fi`,
].join('; ');

const CPUS: Record<string, string> = { x86_64: 'x86_64', amd64: 'x86_64', aarch64: 'aarch64', arm64: 'aarch64' };

// The Nix system for `uname -m` and `uname -s`: x86_64 Linux -> x86_64-linux, arm64 Darwin -> aarch64-darwin.
export function nixSystem(machine: string, kernel: string): string {
  return `${CPUS[machine.toLowerCase()] ?? machine.toLowerCase()}-${kernel.toLowerCase()}`;
}

type Verdict = Pick<HostCheck, 'nix' | 'system' | 'state' | 'detail'>;

// Judge the probe's output against the arch the runner claims.
export function judgeProbe(stdout: string, arch: string): Verdict {
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !values.has(line.slice(0, eq))) values.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const machine = values.get('machine');
  const kernel = values.get('kernel');
  if (!machine || !kernel) return { nix: undefined, system: undefined, state: 'down', detail: `the probe printed no uname: ${tail(stdout, 2) || 'nothing'}` };
  const system = nixSystem(machine, kernel);
  const failed = values.get('nix-failed');
  if (failed !== undefined) return { nix: undefined, system, state: 'down', detail: `nix-store --version failed: ${failed}` };
  const nixLine = values.get('nix');
  if (nixLine === undefined || nixLine === '-') {
    return { nix: undefined, system, state: 'down', detail: 'no Nix: nix-store is not on the PATH nor in /nix/var/nix/profiles/default/bin' };
  }
  const nix = /\(Nix\)\s+(\S+)/.exec(nixLine)?.[1] ?? nixLine;
  if (system !== arch) return { nix, system, state: 'down', detail: `the host is ${system}, but its arch is ${arch}` };
  return { nix, system, state: 'up', detail: nixLine };
}

// A known_hosts file holding just the entry's own pinned key, for the probe's login; removed by `cleanup`.
async function pinEntryKey(target: SshTarget, hostKey: string): Promise<{ target: SshTarget; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'inventory-known-hosts-'));
  const file = join(dir, 'known_hosts');
  await writeFile(file, `${knownHostsName({ host: target.hostname, port: target.port, hostKeyAlias: target.hostKeyAlias })} ${hostKey}\n`, { mode: 0o600 });
  return { target: { ...target, userKnownHostsFiles: [file], globalKnownHostsFiles: [] }, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// Run the probe on localhost, through /bin/sh.
async function probeLocal(signal: AbortSignal): Promise<string> {
  const result = await execa('/bin/sh', ['-c', PROBE_SCRIPT], { stdin: 'ignore', reject: false, cancelSignal: signal, maxBuffer: 64 * 1024 });
  signal.throwIfAborted();
  if (result.failed) throw new TgError('E_REMOTE', `localhost: the probe exited ${result.exitCode ?? result.signal}: ${tail(result.stderr) || result.shortMessage}`);
  return result.stdout;
}

// Log in to the host and run the probe there; `step` names what is under way, for timeouts.
async function probeRemote(entry: InventoryEntry, signal: AbortSignal, timeoutMs: number, step: (name: string) => void): Promise<string> {
  step('resolving the alias with ssh -G');
  let target = await targetFor(entry, { signal });
  let cleanup = async (): Promise<void> => {};
  try {
    if (entry.hostKey !== undefined) ({ target, cleanup } = await pinEntryKey(target, entry.hostKey));
    step('connecting');
    const session = await openSsh(target, { signal, readyTimeoutMs: timeoutMs });
    try {
      step('logged in, running the probe');
      const result = await session.run(PROBE_SCRIPT, { signal, maxOutputBytes: 64 * 1024 });
      if (result.code !== 0) throw new TgError('E_REMOTE', `ssh ${entry.name}: the probe exited ${result.code ?? result.signal}: ${tail(result.stderr) || 'no output'}`);
      return result.stdout;
    } finally {
      await session.close();
    }
  } finally {
    await cleanup();
  }
}

// Probe one runner within `timeoutMs`; never rejects but when the caller's signal aborts.
export async function checkHost(entry: InventoryEntry, options: CheckOptions): Promise<HostCheck> {
  const started = performance.now();
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const local = entry.name === 'localhost';
  const arch = entry.arch ?? localSystem();
  let step = 'starting the probe';
  let ssh: HostCheck['ssh'] = local ? 'local' : 'failed';
  const done = (verdict: Verdict): HostCheck => ({ name: entry.name, arch, ssh, ...verdict, ms: Math.round(performance.now() - started) });
  try {
    const stdout = local
      ? await probeLocal(signal)
      : await probeRemote(entry, signal, options.timeoutMs, (name) => {
          step = name;
          if (name.startsWith('logged in')) ssh = 'ok';
        });
    return done(judgeProbe(stdout, arch));
  } catch (error) {
    options.signal?.throwIfAborted();
    const detail = deadline.aborted ? `no answer within ${options.timeoutMs / 1000} s (${step})` : error instanceof Error ? error.message : String(error);
    return done({ nix: undefined, system: undefined, state: 'down', detail });
  }
}

// Probe every runner at once, each within `timeoutMs`; the results are in the entries' order.
export async function checkRunners(entries: readonly InventoryEntry[], options: CheckOptions): Promise<HostCheck[]> {
  const checks = await Promise.all(entries.map((entry) => checkHost(entry, options)));
  options.signal?.throwIfAborted();
  return checks;
}
