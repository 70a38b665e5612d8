// The flake's packages, built offline by scripts/nix-build with the nixpkgs stand-in:
// what Testground's nix:generic builder gets, what artifacts.json promises, and that
// the app closure runs on its own.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SYSTEMS = ['x86_64-linux', 'aarch64-linux', 'x86_64-darwin', 'aarch64-darwin'] as const;
const hostSystem = process.arch === 'arm64' ? 'aarch64-linux' : 'x86_64-linux';
const otherSystems = SYSTEMS.filter((s) => s !== hostSystem);
const storePath = /^\/nix\/store\/[0-9a-z]{32}-[^/]+$/;
const onlyPath = { env: { PATH: '/usr/bin:/bin' }, extendEnv: false } as const;

interface BuildResult {
  drvPath: string;
  outputs: { out: string };
}
interface Artifacts {
  version: number;
  attr: string;
  systems: Record<string, { drvPath: string; outPath: string }>;
}

// scripts/nix-build <attr>: its stdout is `nix build --json`.
async function nixBuild(attr: string) {
  const result = await execa(`${root}scripts/nix-build`, [attr], { cwd: root, timeout: 600_000, stdin: 'ignore' });
  const parsed = JSON.parse(result.stdout) as BuildResult[];
  expect(parsed.length).toBeGreaterThan(0);
  return { result: parsed[0]!, stderr: result.stderr };
}

// A Nix command with the repository's Nix configuration (nix/nix.conf).
function nix(command: string, args: string[]) {
  return execa('bash', ['-c', '. scripts/lib/nix-env.sh && exec "$@"', 'nix-env', command, ...args], {
    cwd: root,
    reject: false,
    timeout: 60_000,
  });
}

async function isValid(path: string): Promise<boolean> {
  return (await nix('nix-store', ['--check-validity', path])).exitCode === 0;
}

async function closure(path: string): Promise<string[]> {
  const result = await nix('nix-store', ['-qR', path]);
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.split('\n').filter(Boolean);
}

describe('the flake built offline', () => {
  let runner: BuildResult;
  let artifacts: Artifacts;
  let plan: string;

  beforeAll(async () => {
    runner = (await nixBuild('remote-runner')).result;
    artifacts = JSON.parse(readFileSync(`${runner.outputs.out}/share/remote-runner/artifacts.json`, 'utf8')) as Artifacts;
    plan = artifacts.systems[hostSystem]!.outPath;
  }, 900_000);

  it('gives Testground an out path that holds an executable bin/remote-runner', () => {
    expect(runner.outputs.out).toMatch(storePath);
    expect(statSync(`${runner.outputs.out}/bin/remote-runner`).mode & 0o111).not.toBe(0);
  });

  it('writes an artifacts.json that names every system’s plan derivation and output', () => {
    expect(artifacts.version).toBe(1);
    expect(artifacts.attr).toBe('plan');
    expect(Object.keys(artifacts.systems).sort()).toEqual([...SYSTEMS].sort());
    for (const system of SYSTEMS) {
      const entry = artifacts.systems[system]!;
      expect(entry.drvPath).toMatch(/^\/nix\/store\/[0-9a-z]{32}-[^/]+\.drv$/);
      expect(entry.outPath).toMatch(storePath);
      expect(entry.outPath).toMatch(/-plan-/);
    }
    expect(new Set(SYSTEMS.map((s) => artifacts.systems[s]!.drvPath)).size).toBe(SYSTEMS.length);
  });

  it('puts node and this system’s plan in the runner’s closure', async () => {
    const result = await nix('nix', ['path-info', '-r', runner.outputs.out]);
    expect(result.exitCode, result.stderr).toBe(0);
    const paths = result.stdout.split('\n').filter(Boolean);
    expect(paths).toContain(plan);
    const node = paths.find((p) => /-nodejs-[^/]*$/.test(p) && !p.endsWith('.drv'));
    expect(node, 'a nodejs store path').toBeDefined();
    expect(existsSync(`${node}/bin/node`)).toBe(true);
  });

  it('runs remote-runner through an absolute node from the store, not a PATH lookup', () => {
    const wrapper = readFileSync(`${runner.outputs.out}/bin/remote-runner`, 'utf8');
    expect(wrapper).toMatch(/^#!\/\S+\n/);
    expect(wrapper).toMatch(/exec \/nix\/store\/[0-9a-z]{32}-nodejs-[^/\s]*\/bin\/node /);
    expect(wrapper).toContain(`${plan}/lib/remote-runner/dist/remote-runner.mjs --artifacts ${runner.outputs.out}/share/remote-runner/artifacts.json "$@"`);
  });

  it('builds this system’s plan but only instantiates the other systems’ plans', async () => {
    expect(await isValid(plan)).toBe(true);
    const paths = await closure(runner.outputs.out);
    for (const system of otherSystems) {
      const { drvPath, outPath } = artifacts.systems[system]!;
      expect(await isValid(outPath), `${system} output must not be built`).toBe(false);
      expect(await isValid(drvPath), `${system} derivation must be in the store`).toBe(true);
      expect(paths, `${system} derivation in the runner's closure`).toContain(drvPath);
      expect(paths).not.toContain(outPath);
    }
  });

  it('builds nothing the second time and returns the same paths', async () => {
    const again = await nixBuild('remote-runner');
    expect(again.result).toEqual(runner);
    expect(again.stderr).not.toMatch(/building '/);
  }, 120_000);

  it('packages the code and production node_modules, without dev dependencies or repository clutter', () => {
    const pkg = `${plan}/lib/remote-runner`;
    expect(existsSync(`${pkg}/helpers`)).toBe(true);
    expect(existsSync(`${pkg}/bin`)).toBe(true);
    expect(JSON.parse(readFileSync(`${pkg}/package.json`, 'utf8')).type).toBe('module');
    expect(existsSync(`${pkg}/node_modules/zod/package.json`)).toBe(true);
    expect(existsSync(`${pkg}/node_modules/tsx/package.json`)).toBe(true);
    expect(existsSync(`${pkg}/node_modules/vitest`)).toBe(false);
    expect(existsSync(`${pkg}/node_modules/typescript`)).toBe(false);
    const allowed = ['bin', 'dist', 'helpers', 'plans', 'package.json', 'manifest.toml', 'tsconfig.json', 'node_modules'];
    expect(readdirSync(`${pkg}/dist`).sort()).toEqual(expect.arrayContaining(['plan.mjs', 'remote-agent.mjs', 'remote-runner.mjs']));
    expect(readdirSync(pkg).filter((e) => !allowed.includes(e))).toEqual([]);
  });

  it('runs the closure’s node with nothing but PATH in the environment', async () => {
    const wrapper = readFileSync(`${plan}/bin/plan`, 'utf8');
    const node = /exec (\/nix\/store\/\S+\/bin\/node) /.exec(wrapper)?.[1];
    expect(node, 'bin/plan execs an absolute node').toBeDefined();
    const hello = await execa(node!, ['-e', 'console.log(1)'], { ...onlyPath, timeout: 30_000 });
    expect(hello.stdout).toBe('1');
  });

  it('loads the package’s TypeScript exports through tsx with nothing but PATH', async () => {
    const pkg = `${plan}/lib/remote-runner`;
    const manifest = JSON.parse(readFileSync(`${pkg}/package.json`, 'utf8')) as { name: string; exports?: Record<string, string> };
    const entries = Object.entries(manifest.exports ?? {}).filter(([, target]) => target.endsWith('.ts') && existsSync(`${pkg}/${target}`));
    expect(entries.length, 'package.json exports a TypeScript module').toBeGreaterThan(0);
    const specifier = `${manifest.name}${entries[0]![0].slice(1)}`;
    const wrapper = readFileSync(`${plan}/bin/plan`, 'utf8');
    const node = /exec (\/nix\/store\/\S+\/bin\/node) /.exec(wrapper)![1]!;
    const script = [
      "const { register } = await import('tsx/esm/api');",
      'register();',
      "const { z } = await import('zod');",
      `const mod = await import(${JSON.stringify(specifier)});`,
      "console.log(z.string().parse('ok'), Object.keys(mod).length > 0);",
    ].join('\n');
    const result = await execa(node, ['--input-type=module', '-e', script], { ...onlyPath, cwd: pkg, timeout: 60_000 });
    expect(result.stdout).toBe('ok true');
  });

  it('starts bin/plan with nothing but PATH: the plan loads and answers, it does not crash', async (ctx) => {
    // bin/plan execs node on the package's bin/plan.js: skip until that entry exists.
    if (!existsSync(`${plan}/lib/remote-runner/bin/plan.js`)) ctx.skip();
    // Without TEST_* variables a plan reports its run environment as a user error (exit 1 or 2,
    // see helpers/shared/cli.ts); a missing module or a bug would exit 70 or crash.
    const result = await execa(`${plan}/bin/plan`, ['--help'], { ...onlyPath, reject: false, timeout: 60_000 });
    expect(result.stderr).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|ERR_UNKNOWN_FILE_EXTENSION/);
    expect([0, 1, 2], result.stderr).toContain(result.exitCode);
  });

  it('starts the runner’s bin/remote-runner with nothing but PATH without crashing', async (ctx) => {
    // bin/remote-runner.js loads helpers/remote-runner/cli.ts: skip until that exists.
    if (!existsSync(`${plan}/lib/remote-runner/helpers/remote-runner/cli.ts`)) ctx.skip();
    const result = await execa(`${runner.outputs.out}/bin/remote-runner`, ['--help'], { ...onlyPath, reject: false, timeout: 60_000 });
    expect(result.stderr).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|ERR_UNKNOWN_FILE_EXTENSION/);
    expect([0, 1, 2], result.stderr).toContain(result.exitCode);
  });
});
