// Bundles the TypeScript module behind each bin/<name>.js into dist/<name>.mjs
// (dependencies stay external, in node_modules), so the packaged bins start
// without compiling TypeScript at run time. Usage: node bundle.mjs <package dir>
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';

const pkg = process.argv[2];
if (!pkg) throw new Error('usage: node bundle.mjs <package dir>');
const esbuild = createRequire(`${pkg}/package.json`)('esbuild');
mkdirSync(`${pkg}/dist`, { recursive: true });
for (const file of readdirSync(`${pkg}/bin`)) {
  if (!file.endsWith('.js') || file.startsWith('_')) continue;
  const target = /launch\('([^']+)'\)/.exec(readFileSync(`${pkg}/bin/${file}`, 'utf8'))?.[1];
  if (!target) continue;
  const name = file.slice(0, -'.js'.length);
  const entry = `${pkg}/bin/.bundle-${name}.ts`;
  writeFileSync(entry, `import { runMain } from '../helpers/shared/cli.ts';\nimport * as mod from '${target}';\n\nawait runMain(() => mod.main(), { detached: mod.detached === true });\n`);
  try {
    esbuild.buildSync({
      entryPoints: [entry],
      outfile: `${pkg}/dist/${name}.mjs`,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'warning',
    });
  } finally {
    unlinkSync(entry);
  }
}
