// The flake's packages, built offline by scripts/nix-build with the nixpkgs stand-in:
// what Testground's nix:generic builder gets, what the job description promises,
// and that the app and the agent are small closures that run on their own.
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
interface Component {
  drvPath: string;
  outPath: string;
  entry: string;
}
interface JobDescription {
  version: number;
  plan: string;
  systems: Record<string, { app: Component; agent: Component }>;
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
  let job: JobDescription;
  let app: string;
  let agent: string;
  let tools: string;

  beforeAll(async () => {
    runner = (await nixBuild('remote-runner')).result;
    job = JSON.parse(readFileSync(`${runner.outputs.out}/share/remote-runner/job.json`, 'utf8')) as JobDescription;
    app = job.systems[hostSystem]!.app.outPath;
    agent = job.systems[hostSystem]!.agent.outPath;
    tools = /(\/nix\/store\/[0-9a-z]{32}-[^/\s]+)\/lib\/remote-runner\/dist\/remote-runner-controller\.mjs/.exec(readFileSync(`${runner.outputs.out}/bin/remote-runner`, 'utf8'))![1]!;
  }, 900_000);

  it('gives Testground an out path that holds an executable bin/remote-runner', () => {
    expect(runner.outputs.out).toMatch(storePath);
    expect(statSync(`${runner.outputs.out}/bin/remote-runner`).mode & 0o111).not.toBe(0);
  });

  it('writes a job description that names every system’s app and agent: derivation, output and entry', () => {
    expect(job.version).toBe(2);
    expect(job.plan).toBe('remote-runner');
    expect(Object.keys(job.systems).sort()).toEqual([...SYSTEMS].sort());
    for (const system of SYSTEMS) {
      const { app: a, agent: g } = job.systems[system]!;
      expect(a).toEqual({ drvPath: expect.stringMatching(/^\/nix\/store\/[0-9a-z]{32}-plan-[^/]+\.drv$/), outPath: expect.stringMatching(storePath), entry: 'bin/plan' });
      expect(g).toEqual({ drvPath: expect.stringMatching(new RegExp(`-remote-agent-[^/]+-${system}\\.drv$`)), outPath: expect.stringMatching(storePath), entry: 'bin/remote-agent' });
    }
    expect(new Set(SYSTEMS.map((s) => job.systems[s]!.app.drvPath)).size).toBe(SYSTEMS.length);
  });

  it('runs the Go instance process from the store, with the controller and the job description', () => {
    const wrapper = readFileSync(`${runner.outputs.out}/bin/remote-runner`, 'utf8');
    expect(wrapper).toMatch(/^#!\/\S+\n/);
    expect(wrapper).toMatch(/exec \/nix\/store\/[0-9a-z]{32}-remote-runner-client-[^/\s]*\/bin\/remote-runner --controller '\/nix\/store\/[0-9a-z]{32}-nodejs-[^/\s]*\/bin\/node /);
    expect(wrapper).toContain(`${tools}/lib/remote-runner/dist/remote-runner-controller.mjs' --job ${runner.outputs.out}/share/remote-runner/job.json "$@"`);
  });

  it('builds this system’s app and agent, and only instantiates the other systems’ ones', async () => {
    expect(await isValid(app)).toBe(true);
    expect(await isValid(agent)).toBe(true);
    const paths = await closure(runner.outputs.out);
    expect(paths).toEqual(expect.arrayContaining([app, agent]));
    for (const system of otherSystems) {
      // The stand-in cannot build another system's app; agents are cross-built here on demand.
      expect(await isValid(job.systems[system]!.app.outPath), `${system}: the app must not be built`).toBe(false);
      for (const { drvPath, outPath } of [job.systems[system]!.app, job.systems[system]!.agent]) {
        expect(paths, `${system}: ${drvPath} in the runner's closure`).toContain(drvPath);
        expect(paths, `${system}: ${outPath} not in the runner's closure`).not.toContain(outPath);
      }
    }
  });

  it('builds nothing the second time and returns the same paths', async () => {
    const again = await nixBuild('remote-runner');
    expect(again.result).toEqual(runner);
    expect(again.stderr).not.toMatch(/building '/);
  }, 120_000);

  it('makes the app one bundle plus node, and the agent a closure of its own', async () => {
    const appClosure = await closure(app);
    expect(appClosure.sort()).toEqual([app, appClosure.find((p) => /-nodejs-[^/]*$/.test(p))!].sort());
    expect(readdirSync(`${app}/lib`)).toEqual(['plan.mjs']);
    expect(await closure(agent)).toEqual([agent]);
    const ldd = await execa('ldd', [`${agent}/bin/remote-agent`], { reject: false });
    expect(`${ldd.stdout}${ldd.stderr}`).toMatch(/not a dynamic executable/);
  });

  it('packages the runner’s code and production node_modules, without dev dependencies or repository clutter', () => {
    const pkg = `${tools}/lib/remote-runner`;
    expect(JSON.parse(readFileSync(`${pkg}/package.json`, 'utf8')).type).toBe('module');
    expect(existsSync(`${pkg}/node_modules/zod/package.json`)).toBe(true);
    expect(existsSync(`${pkg}/node_modules/vitest`)).toBe(false);
    expect(existsSync(`${pkg}/node_modules/typescript`)).toBe(false);
    const allowed = ['bin', 'dist', 'go', 'helpers', 'plans', 'package.json', 'manifest.toml', 'tsconfig.json', 'node_modules'];
    expect(readdirSync(`${pkg}/dist`)).toEqual(expect.arrayContaining(['remote-runner-controller.mjs', 'tg-run.mjs', 'sync-service.mjs']));
    expect(readdirSync(pkg).filter((e) => !allowed.includes(e))).toEqual([]);
  });

  it('starts the app with nothing but PATH: the plan loads and answers, it does not crash', async () => {
    // Without TEST_* variables the plan reports its run environment as a user error (exit 1 or 2,
    // see helpers/shared/cli.ts); a missing module or a bug would exit 70 or crash.
    const result = await execa(`${app}/bin/plan`, [], { ...onlyPath, reject: false, timeout: 60_000 });
    expect(result.stderr).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|ERR_UNKNOWN_FILE_EXTENSION/);
    expect(result.stderr).toMatch(/TEST_PLAN/);
    expect([1, 2], result.stderr).toContain(result.exitCode);
  });

  it('starts the runner’s bin/remote-runner and the agent with nothing but PATH', async () => {
    const result = await execa(`${runner.outputs.out}/bin/remote-runner`, ['--help'], { ...onlyPath, reject: false, timeout: 60_000 });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toMatch(/remote-runner --job/);
    const version = await execa(`${agent}/bin/remote-agent`, ['version'], { ...onlyPath, reject: false, timeout: 10_000 });
    expect(version.exitCode, version.stderr).toBe(0);
  });
});
