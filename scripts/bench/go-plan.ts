// examples/go-plan, the trivial Go app of B6 and B7, as the build measured has it: a
// copy of the plan directory (from the same commit, or the working tree), the
// environment its exec:go build needs (go/place from the tests' file proxy), and its
// Nix artifact (lib.testgroundPlan of the same remote-runner), built offline.
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goProxyEnv } from '../../test/helpers/go-proxy.ts';
import type { Build } from './lab.ts';
import { must, nixEnv, repoRoot, tempDir } from './util.ts';

/** The plan ready to run both ways. */
export interface GoPlan {
  /** The plan directory (its manifest; exec:go builds from it). */
  dir: string;
  /** The Nix artifact: bin/remote-runner and its job description. */
  artifact: string;
  /** The environment tg-run runs with. */
  env: Record<string, string>;
}

export async function prepareGoPlan(build: Build): Promise<GoPlan> {
  const dir = await tempDir('go-plan');
  const fromCommit = /\?rev=([0-9a-f]{40})$/.exec(build.flakeRef)?.[1];
  if (fromCommit) {
    await must('sh', ['-c', `git -C '${repoRoot}' archive ${fromCommit} examples/go-plan | tar -x -C '${dir}' --strip-components=2`]);
  } else {
    await cp(join(repoRoot, 'examples/go-plan'), dir, { recursive: true });
  }
  const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, ...(await goProxyEnv()) };
  // The flake builds from vendor/ (vendorHash = null), as its README says.
  await must('go', ['mod', 'vendor'], { cwd: dir, env, timeout: 300_000 });
  const offline = (await must(join(repoRoot, 'scripts/nix-build'), ['--offline-args'], { cwd: repoRoot })).stdout.trim().split(/\s+/);
  const { stdout } = await must(
    'nix',
    ['build', `path:${dir}`, '--json', '--no-link', '--override-input', 'remote-runner', build.flakeRef, ...offline],
    { cwd: dir, env: { ...process.env, ...nixEnv }, timeout: 900_000 },
  );
  const artifact = (JSON.parse(stdout) as Array<{ outputs: { out: string } }>)[0]!.outputs.out;
  // The artifact must hand its instances to this build's controller, or B6 would measure another one.
  if (!(await readFile(join(artifact, 'bin/remote-runner'), 'utf8')).includes(build.tools)) throw new Error(`the go-plan artifact ${artifact} does not start ${build.tools}'s controller`);
  return { dir, artifact, env };
}
