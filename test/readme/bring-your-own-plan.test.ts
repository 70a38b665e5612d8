// The README's "Bring your own plan" section, run as written: the shell blocks of
// its Go and TypeScript parts, in order, each part in a fresh directory, with the
// lab's hosts. Only the flake reference and `npx` point at this checkout.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { goProxyEnv } from '../helpers/go-proxy.ts';
import { labDown, labUp } from '../helpers/lab.ts';
import { nixEnv, offlineNixpkgs } from '../helpers/nix.ts';
import { removeAll, repoRoot, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];

// The fenced blocks of `lang` in the README subsection `### <title>` of "Bring your own plan".
async function blocks(title: string, lang: string): Promise<string[]> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((s) => s.startsWith('Bring your own plan\n'))!;
  const part = section.split('\n### ').find((s) => s.startsWith(`${title}\n`))!;
  return [...part.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
}

// Run the blocks as one bash script in a fresh directory; resolves with its output.
async function runAsUser(script: string): Promise<string> {
  const home = await tempDir('byop-');
  dirs.push(home);
  const local = script.replaceAll('github:remote-runner/remote-runner', repoRoot.replace(/\/$/, '')).replaceAll('npx tg-run', `node ${repoRoot}bin/tg-run.js`);
  const offline = `--override-input remote-runner ${repoRoot} --override-input nixpkgs path:${await offlineNixpkgs()} --no-write-lock-file`;
  const result = await execa('bash', ['-c', `set -euo pipefail\n${local}`], {
    cwd: home,
    // The Go module plans import is served from a proxy on disk, as the public one will serve it.
    env: { ...(await nixEnv({ features: true, dir: home })), ...(await goProxyEnv()), PATH: process.env.PATH!, HOME: process.env.HOME!, TG_RUN_NIX_ARGS: offline },
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 600_000,
  });
  expect(result.exitCode, result.all).toBe(0);
  return result.stdout;
}

// The hostnames in the host.json files a `cat` printed.
const hostnames = (stdout: string) => [...stdout.matchAll(/"hostname": "([^"]+)"/g)].map((m) => m[1]!);

beforeAll(() => labUp(2), 300_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('the README’s "Bring your own plan"', { timeout: 900_000 }, () => {
  it('shows the Go template’s whole flake.nix', async () => {
    const [shown] = await blocks('A Go plan', 'nix');
    expect(shown).toBe(await readFile(join(repoRoot, 'examples', 'go-plan', 'flake.nix'), 'utf8'));
    expect(shown!.split('\n').length).toBeLessThanOrEqual(24);
  });

  it('takes a Go user from nothing to runs on two lab hosts, with exec:go and with the flake', async () => {
    const sh = await blocks('A Go plan', 'sh');
    expect(sh).toHaveLength(2);
    const out = await runAsUser(sh.join('\n'));
    expect(new Set(hostnames(out))).toEqual(new Set([hostname(), 'lab-h1', 'lab-h2']));
    // Three runs (here, two hosts with exec:go, two hosts with nix:generic), every instance a success.
    expect([...out.matchAll(/^(\d+) instances: (\d+) success$/gm)].map((m) => [m[1], m[2]])).toEqual([['2', '2'], ['4', '4'], ['4', '4']]);
  });

  it('takes a TypeScript user from nothing to a run here and on a lab host', async () => {
    const sh = await blocks('A TypeScript plan', 'sh');
    expect(sh).toHaveLength(1);
    const out = await runAsUser(sh.join('\n'));
    expect(new Set(hostnames(out))).toEqual(new Set([hostname(), 'lab-h1']));
    expect([...out.matchAll(/^(\d+) instances: (\d+) success$/gm)].map((m) => [m[1], m[2]])).toEqual([['3', '3'], ['2', '2']]);
  });
});
