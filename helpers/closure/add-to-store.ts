// Put a file tree that no derivation built into the local Nix store: a
// content-addressed path with no references, as `nix-store --add` makes it.
import { execa } from 'execa';
import { TgError, tail } from '../shared/error.ts';

// Add `dir` (its base name becomes the store path's name); resolves with the store path.
export async function addToStore(dir: string, signal?: AbortSignal): Promise<string> {
  const result = await execa('nix-store', ['--add', dir], { cancelSignal: signal, reject: false, stdin: 'ignore' });
  if (result.failed) throw new TgError('E_BUILD', `nix-store --add ${dir} exited ${result.exitCode ?? result.signal}: ${tail(result.stderr)}`, { cause: result });
  const path = result.stdout.trim().split('\n').pop() ?? '';
  if (!path.startsWith('/nix/store/')) throw new TgError('E_BUILD', `nix-store --add ${dir} printed no store path: ${tail(result.stdout)}`);
  return path;
}
