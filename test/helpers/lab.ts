// Lab hosts and the Nix build, for tests that run instances on real remote hosts.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { repoRoot } from './tg-run.ts';

// One user of the lab at a time, machine-wide: a held flock, released by labDown().
const LAB_USER_LOCK = '/run/remote-runner-lab.user.lock';
let holder: ReturnType<typeof execa> | undefined;

// Wait for, and hold, the machine-wide lab lock.
export async function takeLab(): Promise<void> {
  if (holder) return;
  // The lock lives as long as `cat` reads our stdin: labDown() or our death ends it.
  const child = execa('flock', ['-w', '900', LAB_USER_LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdin: 'pipe', reject: false });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    void child.then((r) => reject(new Error(`cannot take the lab lock ${LAB_USER_LOCK}: ${r.stderr || `exit ${r.exitCode}`}`)));
  });
  holder = child;
}

// Bring up `n` fresh lab hosts (empty stores); the caller must call labDown().
export async function labUp(n: number): Promise<void> {
  await takeLab();
  await execa(`${repoRoot}scripts/lab`, ['down'], { timeout: 60_000, stdin: 'ignore' });
  await execa(`${repoRoot}scripts/lab`, ['up', String(n)], { timeout: 120_000, stdin: 'ignore' });
}

export async function labDown(): Promise<void> {
  await execa(`${repoRoot}scripts/lab`, ['down'], { timeout: 60_000, stdin: 'ignore', reject: false });
  await releaseLab();
}

// Let the next user have the lab.
export async function releaseLab(): Promise<void> {
  holder?.stdin?.end();
  await holder;
  holder = undefined;
}

// Run a command inside a lab host's namespaces.
export function labExec(host: string, command: string[]) {
  return execa(`${repoRoot}scripts/lab`, ['exec', host, '--', ...command], { reject: false, timeout: 30_000, stdin: 'ignore' });
}

/** The repository's plan built offline: the artifact (bin/remote-runner), and this system's app and agent. */
export interface RunnerBuild {
  runner: string;
  plan: string;
  agent: string;
  /** This system's entry of the job description. */
  job: { app: { drvPath: string; outPath: string; entry: string }; agent: { drvPath: string; outPath: string; entry: string } };
}

let built: Promise<RunnerBuild> | undefined;

// Build the runner offline once per test file.
export function buildRunner(): Promise<RunnerBuild> {
  built ??= (async () => {
    const result = await execa(`${repoRoot}scripts/nix-build`, ['remote-runner'], { cwd: repoRoot, timeout: 600_000, stdin: 'ignore' });
    const runner = (JSON.parse(result.stdout) as Array<{ outputs: { out: string } }>)[0]!.outputs.out;
    const description = JSON.parse(await readFile(`${runner}/share/remote-runner/job.json`, 'utf8')) as { systems: Record<string, RunnerBuild['job']> };
    const job = description.systems['x86_64-linux']!;
    return { runner, plan: job.app.outPath, agent: job.agent.outPath, job };
  })();
  return built;
}
