// tg-run with the nix:generic builder: `nix build .#remote-runner --json`, offline,
// then every instance runs the closure's bin/remote-runner, which runs bin/plan.
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
afterEach(() => removeAll(dirs));

describe('tg-run with the nix:generic builder', () => {
  it('builds the flake offline and passes server-client on localhost from the closure', { timeout: 600_000 }, async () => {
    const nixEnv = await execa('bash', ['-c', '. scripts/lib/nix-env.sh && echo "$NIX_USER_CONF_FILES" && nix_env_offline_args'], { cwd: repoRoot, timeout: 600_000 });
    const [confFiles = '', offlineArgs = ''] = nixEnv.stdout.split('\n');
    const outputs = await tempDir('tg-nix-');
    dirs.push(outputs);
    const result = await startTgRun(['single', '--plan', '.', '--testcase', 'server-client', '--instances', '2', '--builder', 'nix:generic', '--outputs-dir', outputs], {
      env: { PATH: process.env.PATH!, NIX_USER_CONF_FILES: confFiles, TG_RUN_NIX_ARGS: offlineArgs, XDG_CACHE_HOME: `${repoRoot}.cache/xdg` },
    });
    const r = readResult(result, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows.map((row) => [row.host, row.outcome])).toEqual([
      ['localhost', 'success'],
      ['localhost', 'success'],
    ]);
    expect(r.stderr).toMatch(/builder nix:generic/);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });
});
