// Questions to the local Nix store: closures, sizes, validity, and realising a derivation.
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';

// The closure of `paths` in the local store, dependencies first.
export async function localClosure(paths: string[], signal?: AbortSignal): Promise<string[]> {
  const result = await execa('nix-store', ['--query', '--requisites', ...paths], { cancelSignal: signal, reject: false, stdin: 'ignore' });
  if (result.failed) throw new TgError('E_COPY', `nix-store --query --requisites ${paths.join(' ')} exited ${result.exitCode}: ${tail(result.stderr)}`);
  return result.stdout.split('\n').filter(Boolean);
}

// The NAR size of each path, summed: what `nix-store --export` will send, near enough.
export async function narSize(paths: string[], signal?: AbortSignal): Promise<number> {
  if (paths.length === 0) return 0;
  const result = await execa('nix-store', ['--query', '--size', ...paths], { cancelSignal: signal, reject: false, stdin: 'ignore' });
  if (result.failed) return 0;
  return result.stdout.split('\n').filter(Boolean).reduce((sum, n) => sum + Number(n), 0);
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
