// Where this package is installed: the directory of its package.json, found from
// this module (in the source tree, in a bundle under dist/, or in node_modules).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NAME = '@remote-runner/plan';
let cached: string | undefined;

// The package's root directory.
export function packageRoot(): string {
  if (cached) return cached;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === NAME) return (cached = dir);
    if (dirname(dir) === dir) throw new Error(`cannot find the ${NAME} package above ${fileURLToPath(import.meta.url)}`);
  }
}

/** How this code runs: TypeScript from the source tree, the npm build (dist/helpers), or a Nix bundle (dist/<bin>.mjs). */
export type Layout = 'source' | 'built' | 'bundle';

// The layout this module was loaded from.
export function layout(): Layout {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return 'source';
  return self.endsWith('.mjs') ? 'bundle' : 'built';
}
