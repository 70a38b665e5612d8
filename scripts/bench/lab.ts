// The lab, taken and released through the tests' helpers (one machine-wide user at a
// time), the offline Nix build, and commands on lab hosts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { JOB_FILE, jobFor, loadJobDescription, programOf } from '../../helpers/closure/job-description.ts';
import { labDown as testLabDown, labUp as testLabUp } from '../../test/helpers/lab.ts';
import { log, must, nixEnv, repoRoot, timed } from './util.ts';

export interface Build {
  /** `<out>` of .#remote-runner: bin/remote-runner and its job description (share/remote-runner/job.json). */
  runner: string;
  /** This system's app: bin/plan, node on one bundle (lib/plan.mjs). */
  plan: string;
  /** This system's agent: bin/remote-agent, a static Go binary. */
  agent: string;
  /** The node the app runs with. */
  node: string;
  /** The package bin/remote-runner runs: bin/sync-service and the other tools, lib/remote-runner. */
  tools: string;
  /** The commit built, with "+ uncommitted changes" when built from the working tree. */
  source: string;
  /** The flake it was built from (the commit, or the working tree), for plans that build on this one. */
  flakeRef: string;
}

// True from the moment we hold the lab's lock until labDown(): only then may we take it down.
let owned = false;

// Fresh lab hosts lab-h1..lab-hN with empty stores (waits while another user holds the lab).
export async function labUp(n: number): Promise<number> {
  try {
    const { ms } = await timed(() => testLabUp(n));
    owned = true;
    log(`lab: ${n} fresh hosts up (${(ms / 1000).toFixed(1)} s with any wait for the lock)`);
    return ms;
  } catch (error) {
    if (!/cannot take the lab lock/.test(String(error))) owned = true;
    throw error;
  }
}

export async function labDown(): Promise<void> {
  if (!owned) return;
  await testLabDown();
  owned = false;
}

export const labIsUp = (): boolean => owned;

// scripts/lab with `args` (shape, uplink, cache, substituter, …), only while the lab is
// ours: it is shared machine-wide, and a command outside our hold could change
// another user's hosts.
export async function labCommand(args: string[], timeoutMs = 300_000): Promise<string> {
  if (!owned) throw new Error(`scripts/lab ${args.join(' ')}: the lab is not ours (labUp first)`);
  return (await must(join(repoRoot, 'scripts/lab'), args, { timeout: timeoutMs })).stdout;
}

// Run `script` with sh inside lab host `host` (its network, mounts and hostname).
export async function onHost(host: string, script: string, timeoutMs = 120_000): Promise<string> {
  const r = await must(join(repoRoot, 'scripts/lab'), ['exec', host, '--', 'sh', '-c', script], { timeout: timeoutMs });
  return r.stdout;
}

// Build the runner offline (a no-op when it is built) and find the app, its node, the agent and the tools.
// From the committed HEAD by default, so that uncommitted work in the tree neither
// breaks nor changes what is measured; from the working tree with `dirty`.
export async function buildRunner(options: { dirty?: boolean } = {}): Promise<Build> {
  let stdout: string;
  const rev = (await must('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot })).stdout.trim();
  const tree = `git+file://${repoRoot.replace(/\/$/, '')}`;
  let flakeRef = tree;
  if (options.dirty) {
    ({ stdout } = await must(join(repoRoot, 'scripts/nix-build'), ['remote-runner'], { cwd: repoRoot, timeout: 900_000 }));
  } else {
    const full = (await must('git', ['rev-parse', 'HEAD'], { cwd: repoRoot })).stdout.trim();
    const offline = (await must(join(repoRoot, 'scripts/nix-build'), ['--offline-args'], { cwd: repoRoot })).stdout.trim().split(/\s+/);
    flakeRef = `${tree}?rev=${full}`;
    ({ stdout } = await must('nix', ['build', `${flakeRef}#remote-runner`, '--json', '--no-link', ...offline], { cwd: repoRoot, env: nixEnv, timeout: 900_000 }));
  }
  const runner = (JSON.parse(stdout) as Array<{ outputs: { out: string } }>)[0]!.outputs.out;
  const jobFile = `${runner}/${JOB_FILE}`;
  const job = jobFor(await loadJobDescription(jobFile), 'x86_64-linux', jobFile);
  const plan = job.app.outPath;
  const agent = job.agent.outPath;
  const node = /exec (\/nix\/store\/\S+\/bin\/node) /.exec(await readFile(programOf(job.app), 'utf8'))?.[1];
  if (!node) throw new Error(`cannot find node in ${programOf(job.app)}`);
  const tools = /(\/nix\/store\/[^/\s]+)\/lib\/remote-runner\//.exec(await readFile(`${runner}/bin/remote-runner`, 'utf8'))?.[1];
  if (!tools) throw new Error(`cannot find the package in ${runner}/bin/remote-runner`);
  return { runner, plan, agent, node, tools, source: options.dirty ? `${rev} + uncommitted changes` : rev, flakeRef };
}

/** A closure in the local store: how many paths, and their NAR bytes. */
export interface ClosureSize {
  paths: number;
  bytes: number;
}

// The size of the closure of `roots` (what a copy to a cold host sends).
export async function closureSize(roots: string[]): Promise<ClosureSize> {
  const paths = (await must('nix-store', ['--query', '--requisites', ...roots], { env: nixEnv })).stdout.split('\n').filter(Boolean);
  const sizes = (await must('nix-store', ['--query', '--size', ...paths], { env: nixEnv })).stdout.split('\n').filter(Boolean).map(Number);
  return { paths: paths.length, bytes: sizes.reduce((sum, n) => sum + n, 0) };
}

// An OpenSSH command to a lab host, timed (the whole process).
export async function sshTimed(args: string[], options: { input?: string; inputFile?: string } = {}): Promise<number> {
  const t0 = performance.now();
  const r = await execa('ssh', args, {
    reject: false,
    timeout: 600_000,
    ...(options.inputFile ? { inputFile: options.inputFile } : options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
  });
  const ms = performance.now() - t0;
  if (r.failed) throw new Error(`ssh ${args.join(' ')} failed (${r.exitCode}): ${String(r.stderr).trim()}`);
  return ms;
}
