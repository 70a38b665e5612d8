// The lab, taken and released through the tests' helpers (one machine-wide user at a
// time), the offline Nix build, and commands on lab hosts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { labDown as testLabDown, labUp as testLabUp } from '../../test/helpers/lab.ts';
import { log, must, nixEnv, repoRoot, timed } from './util.ts';

export interface Build {
  /** `<out>` of .#remote-runner: bin/remote-runner and its artifacts.json. */
  runner: string;
  /** This system's app: bin/plan, bin/remote-agent, lib/remote-runner. */
  plan: string;
  /** The node the app runs with. */
  node: string;
  /** The commit built, with "+ uncommitted changes" when built from the working tree. */
  source: string;
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

// Run `script` with sh inside lab host `host` (its network, mounts and hostname).
export async function onHost(host: string, script: string, timeoutMs = 120_000): Promise<string> {
  const r = await must(join(repoRoot, 'scripts/lab'), ['exec', host, '--', 'sh', '-c', script], { timeout: timeoutMs });
  return r.stdout;
}

// Build the runner offline (a no-op when it is built) and find the app and its node.
// From the committed HEAD by default, so that uncommitted work in the tree neither
// breaks nor changes what is measured; from the working tree with `dirty`.
export async function buildRunner(options: { dirty?: boolean } = {}): Promise<Build> {
  let stdout: string;
  const rev = (await must('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot })).stdout.trim();
  if (options.dirty) {
    ({ stdout } = await must(join(repoRoot, 'scripts/nix-build'), ['remote-runner'], { cwd: repoRoot, timeout: 900_000 }));
  } else {
    const full = (await must('git', ['rev-parse', 'HEAD'], { cwd: repoRoot })).stdout.trim();
    const offline = (await must(join(repoRoot, 'scripts/nix-build'), ['--offline-args'], { cwd: repoRoot })).stdout.trim().split(/\s+/);
    const flake = `git+file://${repoRoot.replace(/\/$/, '')}?rev=${full}#remote-runner`;
    ({ stdout } = await must('nix', ['build', flake, '--json', '--no-link', ...offline], { cwd: repoRoot, env: nixEnv, timeout: 900_000 }));
  }
  const runner = (JSON.parse(stdout) as Array<{ outputs: { out: string } }>)[0]!.outputs.out;
  const artifacts = JSON.parse(await readFile(`${runner}/share/remote-runner/artifacts.json`, 'utf8')) as { systems: Record<string, { outPath: string }> };
  const plan = artifacts.systems['x86_64-linux']!.outPath;
  const wrapper = await readFile(`${plan}/bin/plan`, 'utf8');
  const node = /exec (\/nix\/store\/\S+\/bin\/node) /.exec(wrapper)?.[1];
  if (!node) throw new Error(`cannot find node in ${plan}/bin/plan`);
  return { runner, plan, node, source: options.dirty ? `${rev} + uncommitted changes` : rev };
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
