// Build a derivation on the remote host: send its derivation closure (the .drv
// files and sources, never outputs), realise it there, keep the output there.
import { TgError, tail } from '../shared/error.ts';
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';
import { copyClosure, type CopyReport } from './copy.ts';
import type { SshSession } from '../ssh/session.ts';

/** What a remote build did. */
export interface BuildReport {
  copied: CopyReport;
  outPath: string;
  ms: number;
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
