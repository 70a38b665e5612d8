// Build a derivation on the remote host: send its derivation closure (the .drv
// files and sources, never outputs), realise it there, keep the output there.
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';
import { REMOTE_NIX_PATH, copyClosure, quoteStorePath, type CopyReport } from './copy-closure.ts';
import type { SshSession } from './ssh-session.ts';

/** What a remote build did. */
export interface BuildReport {
  copied: CopyReport;
  outPath: string;
  ms: number;
}

// True when `path` is valid in the local store.
export async function locallyValid(path: string, signal?: AbortSignal): Promise<boolean> {
  const result = await execa('nix-store', ['--check-validity', path], { cancelSignal: signal, reject: false, stdin: 'ignore' });
  return result.exitCode === 0;
}

// Realise a derivation in the local store; resolves with its first output path.
export async function realiseLocally(drvPath: string, signal?: AbortSignal): Promise<string> {
  const result = await execa('nix-store', ['--realise', drvPath], { cancelSignal: signal, reject: false, stdin: 'ignore' });
  if (result.failed) throw new TgError('E_BUILD', `nix-store --realise ${drvPath} exited ${result.exitCode}: ${tail(result.stderr)}`);
  return result.stdout.split('\n').filter(Boolean)[0]!;
}

// Copy `drvPath`'s closure to the host and build it there.
export async function buildRemote(ssh: SshSession, alias: string, drvPath: string, options: { signal?: AbortSignal } = {}): Promise<BuildReport> {
  const started = performance.now();
  const copied = await copyClosure(ssh, alias, drvPath, options);
  const result = await ssh.run(`${REMOTE_NIX_PATH}; exec nix-store --realise ${quoteStorePath(drvPath)}`, { ...(options.signal ? { signal: options.signal } : {}), maxOutputBytes: 1 << 20 });
  if (result.code !== 0) {
    throw new TgError('E_BUILD', `ssh ${alias}: nix-store --realise ${drvPath} exited ${result.code ?? result.signal}: ${tail(result.stderr, 15)}`);
  }
  const outPath = result.stdout.split('\n').filter(Boolean)[0];
  if (!outPath) throw new TgError('E_BUILD', `ssh ${alias}: nix-store --realise ${drvPath} printed no output path`);
  return { copied, outPath, ms: Math.round(performance.now() - started) };
}
