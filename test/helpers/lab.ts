// Lab hosts and the Nix build, for tests that run instances on real remote hosts.
import { execa } from 'execa';
import { repoRoot } from './tg-run.ts';

// Bring up `n` fresh lab hosts (empty stores); the caller must call labDown().
export async function labUp(n: number): Promise<void> {
  await execa(`${repoRoot}scripts/lab`, ['down'], { timeout: 60_000, stdin: 'ignore' });
  await execa(`${repoRoot}scripts/lab`, ['up', String(n)], { timeout: 120_000, stdin: 'ignore' });
}

export async function labDown(): Promise<void> {
  await execa(`${repoRoot}scripts/lab`, ['down'], { timeout: 60_000, stdin: 'ignore', reject: false });
}

// Run a command inside a lab host's namespaces.
export function labExec(host: string, command: string[]) {
  return execa(`${repoRoot}scripts/lab`, ['exec', host, '--', ...command], { reject: false, timeout: 30_000, stdin: 'ignore' });
}

let built: Promise<{ runner: string; plan: string }> | undefined;

// Build the runner offline once per test file; resolves with its output and this system's plan.
export function buildRunner(): Promise<{ runner: string; plan: string }> {
  built ??= (async () => {
    const result = await execa(`${repoRoot}scripts/nix-build`, ['remote-runner'], { cwd: repoRoot, timeout: 600_000, stdin: 'ignore' });
    const runner = (JSON.parse(result.stdout) as Array<{ outputs: { out: string } }>)[0]!.outputs.out;
    const artifacts = (await import('node:fs/promises')).readFile(`${runner}/share/remote-runner/artifacts.json`, 'utf8');
    const plan = (JSON.parse(await artifacts) as { systems: Record<string, { outPath: string }> }).systems['x86_64-linux']!.outPath;
    return { runner, plan };
  })();
  return built;
}
