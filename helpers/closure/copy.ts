// Get a store path's closure onto a remote host: ask which paths it lacks, then
// stream `nix-store --export` of just those into `nix-store --import` over SSH.
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';
import { localClosure, narSize } from './store.ts';

/** What a copy did. */
export interface CopyReport {
  closure: number;
  missing: number;
  bytes: number;
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

// Copy the closure of `roots` to the host, sending only the paths it lacks.
export async function copyClosure(
  ssh: SshSession,
  alias: string,
  roots: string | string[],
  options: { signal?: AbortSignal; onBytes?: (sent: number, total: number) => void } = {},
): Promise<CopyReport> {
  const started = performance.now();
  const closure = await localClosure(typeof roots === 'string' ? [roots] : roots, options.signal);
  const missing = await remoteMissing(ssh, alias, closure, options.signal);
  if (missing.length === 0) return { closure: closure.length, missing: 0, bytes: 0, ms: Math.round(performance.now() - started) };
  const total = await narSize(missing, options.signal);

  const channel = await ssh.exec(`${REMOTE_NIX_PATH}; exec nix-store --import`, { ...(options.signal ? { signal: options.signal } : {}) });
  let remoteErr = '';
  channel.stderr.on('data', (d: Buffer) => (remoteErr = (remoteErr + d.toString()).slice(-4000)));
  channel.on('data', () => {});
  channel.on('error', () => {}); // reported through its exit status
  const remoteExit = new Promise<number | null>((resolve) => channel.once('exit', (code: number | null) => resolve(code)));
  const channelClosed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  // If the import ends first (it failed, or the host went away), the export stops
  // at once instead of blocking on a pipe nobody reads.
  const stopExport = new AbortController();
  const exported = execa('nix-store', ['--export', ...missing], {
    cancelSignal: options.signal ? AbortSignal.any([options.signal, stopExport.signal]) : stopExport.signal,
    reject: false,
    stdin: 'ignore',
    buffer: { stdout: false },
  });
  void channelClosed.then(() => stopExport.abort());
  let bytes = 0;
  exported.stdout!.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    options.onBytes?.(bytes, total);
  });
  exported.stdout!.on('error', () => {});
  exported.stdout!.pipe(channel);
  const local = await exported;
  if (local.failed && !stopExport.signal.aborted) {
    channel.close();
    throw new TgError('E_COPY', `nix-store --export of ${missing.length} paths for ${alias} failed (${local.exitCode ?? local.signal}): ${tail(String(local.stderr))}`);
  }
  const code = await Promise.race([remoteExit, channelClosed.then(() => null)]);
  await channelClosed;
  if (code !== 0) {
    const why = code === null ? 'the channel closed before it exited' : `exited ${code}`;
    throw new TgError('E_COPY', `ssh ${alias}: nix-store --import ${why} after ${bytes} of ${total} bytes: ${tail(remoteErr) || 'no message'}`);
  }
  return { closure: closure.length, missing: missing.length, bytes, ms: Math.round(performance.now() - started) };
}
