// The folders under helpers/ are layers: a module imports only from its own folder
// or from a lower layer, never upward, so the folder names tell which way the code depends.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/tg-run.ts';

// Lowest first. docs/architecture.md describes each layer.
const LAYERS: string[][] = [
  ['shared'],
  ['runenv'],
  ['sync-service', 'runners'],
  ['ssh'],
  ['closure', 'outputs'],
  ['agent', 'choose-server'],
  ['remote-runner', 'inventory'],
  ['tg-run'],
];

const helpers = join(repoRoot, 'helpers');
const rank = (folder: string) => LAYERS.findIndex((layer) => layer.includes(folder));

function* modules(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* modules(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

// Every relative import of a module (static, re-export or dynamic), as a path under helpers/.
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((spec) => relative(helpers, resolve(dirname(file), spec)));
}

describe('the layers of helpers/', () => {
  const folders = readdirSync(helpers, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);

  it('places every folder in exactly one layer', () => {
    expect(folders.filter((f) => rank(f) < 0)).toEqual([]);
    expect(LAYERS.flat().filter((f) => !folders.includes(f))).toEqual([]);
  });

  it('has no module that imports from its own layer\'s neighbour or from a layer above it', () => {
    const upward: string[] = [];
    for (const file of modules(helpers)) {
      // helpers/index.ts, the package's root barrel, sits above every layer.
      if (!relative(helpers, file).includes('/')) continue;
      const from = relative(helpers, file).split('/')[0]!;
      for (const target of importsOf(file)) {
        const to = target.split('/')[0]!;
        if (to === from || target.startsWith('..')) continue;
        if (rank(to) >= rank(from)) upward.push(`${relative(repoRoot, file)} imports helpers/${target}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
