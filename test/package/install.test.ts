// The npm package as a user gets it: `npm pack`, installed into a fresh project,
// every export imported with plain node, its types checked under a strict
// NodeNext project, and its tg-run run on a plan of that project.
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeAll, repoRoot, tempDir } from '../helpers/tg-run.ts';

const SYSTEMS = ['x86_64-linux', 'aarch64-linux', 'x86_64-darwin', 'aarch64-darwin'];
const dirs: string[] = [];
let project: string;
let files: string[];
let manifest: { exports: Record<string, unknown>; bin: Record<string, string> };
const userEnv = () => ({ PATH: `${join(project, 'node_modules', '.bin')}:${process.env.PATH!}`, HOME: process.env.HOME! });

beforeAll(async () => {
  const packs = await tempDir('pack-');
  project = await tempDir('consumer-');
  dirs.push(packs, project);
  const packed = await execa('npm', ['pack', '--json', '--pack-destination', packs], { cwd: repoRoot, timeout: 300_000 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = info!.files.map((f) => f.path);
  manifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as typeof manifest;
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await execa('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(packs, info!.filename), '@types/node@^22', 'typescript@~5.9'], { cwd: project, timeout: 300_000 });
}, 600_000);
afterAll(() => removeAll(dirs));

describe('the package installed from its tarball', { timeout: 120_000 }, () => {
  it('holds exactly what an installed package needs: built code, the agents, the licenses', () => {
    const top = new Set(files.map((f) => f.split('/')[0]));
    expect([...top].sort()).toEqual(['LICENSE-APACHE', 'LICENSE-MIT', 'README.md', 'dist', 'package.json']);
    for (const system of SYSTEMS) expect(files).toContain(`dist/agent/${system}/remote-agent`);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => /\.test\.|^go\/|^test\//.test(f))).toEqual([]);
  });

  it('installs bins whose names cannot collide', async () => {
    const bins = (await readdir(join(project, 'node_modules', '.bin'))).filter((b) => Object.keys(manifest.bin).includes(b));
    expect(bins.sort()).toEqual(['remote-runner', 'remote-runner-choose-server', 'remote-runner-controller', 'remote-runner-inventory', 'remote-runner-sync-service', 'tg-run']);
    expect(Object.keys(manifest.bin)).not.toContain('plan');
    expect(Object.keys(manifest.bin)).not.toContain('inventory');
  });

  it('imports every exports entry with plain node, no tsx', async () => {
    const entries = Object.keys(manifest.exports).filter((e) => e !== './package.json');
    expect(entries).toContain('.');
    for (const entry of entries) {
      const specifier = `@remote-runner/plan${entry.slice(1)}`;
      const result = await execa('node', ['--input-type=module', '-e', `const m = await import(${JSON.stringify(specifier)}); console.log(Object.keys(m).length)`], { cwd: project, env: { PATH: process.env.PATH! }, extendEnv: false, reject: false });
      expect(result.exitCode, `${specifier}: ${result.stderr}`).toBe(0);
      expect(Number(result.stdout), specifier).toBeGreaterThan(0);
    }
  });

  it('type-checks a file that imports each entry under strict NodeNext, with skipLibCheck off and exact optional properties', async () => {
    const entries = Object.keys(manifest.exports).filter((e) => e !== './package.json');
    const imports = entries.map((e, i) => `import * as m${i} from '@remote-runner/plan${e.slice(1)}';`);
    const uses = [
      "import { parseRunEnv, startSyncService, type RunEnv, type SyncService } from '@remote-runner/plan';",
      'export async function start(): Promise<SyncService> { return startSyncService({ host: "127.0.0.1", port: 0 }); }',
      'export const read = (): RunEnv => parseRunEnv({});',
      `export const all = [${entries.map((_, i) => `m${i}`).join(', ')}];`,
    ];
    await writeFile(join(project, 'check.ts'), [...imports, ...uses, ''].join('\n'));
    // The README's example of importing the API, as written.
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.split('\n## ').find((part) => part.startsWith('Installing the package\n'))!;
    await writeFile(join(project, 'readme.ts'), `${/```ts\n([\s\S]*?)```/.exec(section)![1]}export { peers };\n`);
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true, types: ['node'] },
      files: ['check.ts', 'readme.ts'],
    }));
    const result = await execa('npx', ['tsc', '-p', '.'], { cwd: project, reject: false, timeout: 120_000 });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
  });

  it('answers npx tg-run --help', async () => {
    const result = await execa('npx', ['tg-run', '--help'], { cwd: project, env: userEnv(), reject: false });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage:\n  tg-run single/);
  });

  it('runs the installed tg-run on a plan of the project', async () => {
    const plan = join(project, 'plan');
    await mkdir(plan);
    await writeFile(join(plan, 'manifest.toml'), [
      'name = "consumer-plan"', '', '[defaults]', 'builder = "exec:ts"', 'runner = "local:exec"', '',
      '[builders."exec:ts"]', 'enabled = true', '', '[runners."local:exec"]', 'enabled = true', '',
      '[[testcases]]', 'name = "ok"', 'instances = { min = 1, max = 10, default = 1 }', '',
    ].join('\n'));
    await writeFile(join(plan, 'main.ts'), [
      "import sdk from '@testground/sdk';",
      "process.env.TEST_SUBNET ||= '127.1.0.1/16';",
      'const ok = async (runenv: { recordMessage(m: string): void }, _client: unknown): Promise<void> => { runenv.recordMessage("hello from the consumer"); };',
      'await sdk.invokeMap({ ok } as unknown as Parameters<typeof sdk.invokeMap>[0]);',
      '',
    ].join('\n'));
    const outputs = join(project, 'outputs');
    const result = await execa('tg-run', ['single', '--plan', 'plan', '--testcase', 'ok', '--instances', '2', '--outputs-dir', outputs], { cwd: project, env: userEnv(), reject: false, timeout: 120_000 });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/MESSAGE << single\[00[01]\] >> hello from the consumer/);
    expect(result.stdout).toMatch(/^2 instances: 2 success$/m);
  });

  it('stops the sync service bin when npx, which started it, gets SIGTERM', async () => {
    const npx = execa('npx', ['remote-runner-sync-service', '--port', '0'], { cwd: project, env: userEnv(), reject: false });
    let seen = '';
    npx.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 100 && !/ws:\/\/127\.0\.0\.1:\d+/.test(seen); i++) await sleep(100);
    const port = Number(/ws:\/\/127\.0\.0\.1:(\d+)/.exec(seen)?.[1]);
    expect(port, seen).toBeGreaterThan(0);
    npx.kill('SIGTERM');
    // npx's output ends when the last process holding it, the bin, is gone.
    const ended = await Promise.race([npx.then(() => true), sleep(10_000).then(() => false)]);
    if (!ended) npx.kill('SIGKILL');
    const listening = await execa('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { reject: false });
    expect(ended, 'npx and the bin it started are gone within 10 s').toBe(true);
    expect(listening.exitCode, `the sync service still listens on ${port}`).not.toBe(0);
  });
});
