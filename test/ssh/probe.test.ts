// The host probe's shell line against real shells and a nix-store that warns on
// stderr, as Debian's nix-bin does on a machine without the nixbld group.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_SCRIPT, judgeProbe } from '../../helpers/ssh/probe.ts';
import { localSystem } from '../../helpers/runners/runners.ts';

let bin: string;

beforeAll(async () => {
  bin = await mkdtemp(join(tmpdir(), 'probe-bin-'));
});
afterAll(() => rm(bin, { recursive: true, force: true }));

// A fake nix-store on PATH with the given shell body.
async function fakeNixStore(body: string): Promise<void> {
  await writeFile(join(bin, 'nix-store'), `#!/bin/sh\n${body}\n`);
  await chmod(join(bin, 'nix-store'), 0o755);
}

const probe = () => execa('sh', ['-c', PROBE_SCRIPT], { env: { PATH: `${bin}:/usr/bin:/bin` }, extendEnv: false });

describe('the host probe', () => {
  it('reads the Nix version from stdout and ignores a warning on stderr', async () => {
    await fakeNixStore(`echo "warning: the group 'nixbld' specified in 'build-users-group' does not exist" >&2\necho 'nix-store (Nix) 2.8.0'`);
    const verdict = judgeProbe((await probe()).stdout, localSystem());
    expect(verdict).toMatchObject({ nix: '2.8.0', state: 'up', detail: 'nix-store (Nix) 2.8.0' });
  });

  it('reports what nix-store said on stderr when it fails', async () => {
    await fakeNixStore(`echo 'error: cannot open the store' >&2\nexit 1`);
    const verdict = judgeProbe((await probe()).stdout, localSystem());
    expect(verdict).toMatchObject({ state: 'down', detail: expect.stringContaining('error: cannot open the store') });
  });
});
