// One ES module from a TypeScript (or JavaScript) entry, with every dependency
// inside it, for node to run anywhere: how a TS plan travels to a remote host.
import { build } from 'esbuild';
import { TgError } from './error.ts';

// Bundle `entry` into `outfile`; `cwd` is where its node_modules are found from.
export async function bundleTs(entry: string, outfile: string, cwd: string): Promise<void> {
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Optional native speed-ups of ws: absent, they are skipped at run time.
      external: ['bufferutil', 'utf-8-validate', '*.node'],
      // CommonJS dependencies inside an ES module still call require().
      banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
      absWorkingDir: cwd,
      logLevel: 'silent',
    });
  } catch (error) {
    throw new TgError('E_BUILD', `bundling ${entry} failed: ${(error as Error).message.split('\n').slice(0, 6).join(' | ')}`, { cause: error });
  }
}

