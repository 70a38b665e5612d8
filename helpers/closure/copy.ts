// Get a store path's closure onto a remote host: ask which paths it lacks, let
// its own substituters fill in what they can, then stream `nix-store --export`
// of the rest into `nix-store --import` over SSH, compressed when that pays.
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';
import { chooseCompression, ZSTD, type Compression } from './compression.ts';
import { localClosure, narSize } from './store.ts';
import { receiverScript, streamHeader } from './stream.ts';
import { substituteOnHost } from './substitute.ts';

/** What a copy did. */
export interface CopyReport {
  /** Paths in the closure. */
  closure: number;
  /** Paths the host lacked, and this machine sent. */
  missing: number;
  /** Paths the host's own substituters gave it. */
  substituted: number;
  /** Bytes that crossed the link (compressed, when it was). */
  bytes: number;
  /** How the stream travelled, and why (for the progress line). */
  compression: string;
  ms: number;
}

// The subset of `paths` the remote store does not hold.
export async function remoteMissing(ssh: SshSession, alias: string, paths: string[], signal?: AbortSignal): Promise<string[]> {
  if (paths.length === 0) return [];
  const command = `${REMOTE_NIX_PATH}; command -v nix-store >/dev/null || { echo "nix-store: not found" >&2; exit 127; }; exec nix-store --check-validity --print-invalid ${paths.map(quoteStorePath).join(' ')}`;
  const result = await ssh.run(command, { ...(signal ? { signal } : {}) });
  if (result.code === 127 || result.code === 126) {
    throw new TgError('E_COPY', `ssh ${alias}: the host has no Nix (no runnable nix-store on its PATH or in the default profile: ${tail(result.stderr, 2)})`);
  }
  if (result.code !== 0) throw new TgError('E_COPY', `ssh ${alias}: nix-store --check-validity exited ${result.code ?? result.signal}: ${tail(result.stderr)}`);
  const invalid = new Set(result.stdout.split('\n').filter(Boolean));
  return paths.filter((p) => invalid.has(p));
}

/** What the host still lacks of a closure, once its substituters had their turn. */
export interface Needs {
  closure: string[];
  missing: string[];
  substituted: number;
  started: number;
}

// What the host lacks of the closure of `roots`, after asking its own substituters for it.
export async function needsOnHost(ssh: SshSession, alias: string, roots: string[], options: { signal?: AbortSignal; substitute?: boolean } = {}): Promise<Needs> {
  const started = performance.now();
  const closure = await localClosure(roots, options.signal);
  let missing = await remoteMissing(ssh, alias, closure, options.signal);
  let substituted = 0;
  if (missing.length > 0 && options.substitute !== false) {
    const still = (await substituteOnHost(ssh, missing, options.signal)) ?? (await remoteMissing(ssh, alias, missing, options.signal));
    substituted = missing.length - still.length;
    missing = still;
  }
  return { closure, missing, substituted, started };
}

// The report of a copy that sent `bytes` for `needs`.
export function copyReport(needs: Needs, bytes: number, compression: string): CopyReport {
  return { closure: needs.closure.length, missing: needs.missing.length, substituted: needs.substituted, bytes, compression, ms: Math.round(performance.now() - needs.started) };
}

// Copy the closure of `roots` to the host: its substituters first, then only the
// paths it still lacks, compressed when that pays on this link.
export async function copyClosure(
  ssh: SshSession,
  alias: string,
  roots: string | string[],
  options: { signal?: AbortSignal; onBytes?: (sent: number, total: number) => void; substitute?: boolean; compress?: 'auto' | Compression['method'] } = {},
): Promise<CopyReport> {
  const needs = await needsOnHost(ssh, alias, typeof roots === 'string' ? [roots] : roots, options);
  return sendNeeds(ssh, alias, needs, options);
}

// Send what `needs` says the host lacks, from here.
export async function sendNeeds(
  ssh: SshSession,
  alias: string,
  needs: Needs,
  options: { signal?: AbortSignal; onBytes?: (sent: number, total: number) => void; compress?: 'auto' | Compression['method']; spool?: string } = {},
): Promise<CopyReport> {
  if (needs.missing.length === 0) return copyReport(needs, 0, 'nothing to send');
  const total = await narSize(needs.missing, options.signal);
  const compression =
    options.compress === undefined || options.compress === 'auto'
      ? await chooseCompression(ssh, needs.missing, total, options.signal)
      : { method: options.compress, note: `${options.compress === 'zstd' ? 'zstd' : 'uncompressed'} (asked for)` };
  const bytes = await streamExport(ssh, alias, needs.missing, total, compression, options);
  return copyReport(needs, bytes, compression.note);
}

// Stream `nix-store --export` of `missing` (through zstd, or not) into the host's
// `nix-store --import`; resolves with the bytes that crossed the link.
async function streamExport(
  ssh: SshSession,
  alias: string,
  missing: string[],
  total: number,
  { method, level }: Pick<Compression, 'method' | 'level'>,
  options: { signal?: AbortSignal; onBytes?: (sent: number, total: number) => void; spool?: string },
): Promise<number> {
  const channel = await ssh.exec(receiverScript(options.spool), { ...(options.signal ? { signal: options.signal } : {}) });
  channel.write(streamHeader(method === 'zstd' ? 'zstd' : 'none'));
  let remoteErr = '';
  channel.stderr.on('data', (d: Buffer) => (remoteErr = (remoteErr + d.toString()).slice(-4000)));
  channel.on('data', () => {});
  channel.on('error', () => {}); // reported through its exit status
  const remoteExit = new Promise<number | null>((resolve) => channel.once('exit', (code: number | null) => resolve(code)));
  const channelClosed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  // If the import ends first (it failed, or the host went away), the export stops
  // at once instead of blocking on a pipe nobody reads.
  const stopExport = new AbortController();
  const stopped = options.signal ? AbortSignal.any([options.signal, stopExport.signal]) : stopExport.signal;
  const exported = execa('nix-store', ['--export', ...missing], { cancelSignal: stopped, reject: false, stdin: 'ignore', buffer: { stdout: false } });
  const [zstd, ...zstdArgs] = ZSTD.compress(level);
  const packer = method === 'zstd' ? execa(zstd!, zstdArgs, { cancelSignal: stopped, reject: false, stdin: 'pipe', buffer: { stdout: false } }) : undefined;
  void channelClosed.then(() => stopExport.abort());
  let read = 0;
  let sent = 0;
  exported.stdout!.on('data', (chunk: Buffer) => {
    read += chunk.length;
    options.onBytes?.(read, total);
  });
  exported.stdout!.on('error', () => {});
  const wire = packer ? packer.stdout! : exported.stdout!;
  if (packer) {
    packer.stdin!.on('error', () => {});
    exported.stdout!.pipe(packer.stdin!);
  }
  wire.on('data', (chunk: Buffer) => (sent += chunk.length));
  wire.pipe(channel);
  const [local, packed] = await Promise.all([exported, packer]);
  const failed = local.failed ? local : packed?.failed ? packed : undefined;
  if (failed && !stopExport.signal.aborted) {
    channel.close();
    throw new TgError('E_COPY', `${failed === local ? 'nix-store --export' : 'zstd'} of ${missing.length} paths for ${alias} failed (${failed.exitCode ?? failed.signal}): ${tail(String(failed.stderr))}`);
  }
  const code = await Promise.race([remoteExit, channelClosed.then(() => null)]);
  await channelClosed;
  if (code !== 0) {
    const why = code === null ? 'the channel closed before it exited' : `exited ${code}`;
    throw new TgError('E_COPY', `ssh ${alias}: nix-store --import ${why} after ${read} of ${total} bytes: ${tail(remoteErr) || 'no message'}`);
  }
  return sent;
}
