// examples/go-plan placing itself, as it does under Testground's own local:exec:
// each instance is the plan's binary started with the instance environment, and
// place.Elsewhere() hands it to the remote-runner found on the PATH.
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packParams } from '../../helpers/runenv/params.ts';
import { startSyncService, type SyncService } from '../../helpers/sync-service/index.ts';
import { runnerBinDir } from '../helpers/agent.ts';
import { goProxyEnv } from '../helpers/go-proxy.ts';
import { labDown, labUp } from '../helpers/lab.ts';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { workDirs } from '../helpers/runner.ts';
import { removeAll, repoRoot, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let sync: SyncService;
let plan: string;
let bin: string;

beforeAll(async () => {
  const work = await tempDir('self-placed-');
  dirs.push(work);
  plan = join(work, 'go-plan');
  await execa('go', ['build', '-o', plan, '.'], { cwd: join(repoRoot, 'examples', 'go-plan'), env: { ...(await goProxyEnv()), CGO_ENABLED: '0' } });
  // remote-runner (and its controller) on the PATH, as an installed package puts them there.
  bin = await runnerBinDir();
  sync = await startSyncService({ port: 0, log: () => {} });
  await labUp(2);
}, 600_000);
afterAll(async () => {
  await labDown();
  await sync?.close();
  await removeAll(dirs);
});

// Start `n` instances of the plan's binary the way local:exec does.
async function instances(n: number, runners: unknown[], path: string) {
  const run = `self${Date.now().toString(36)}`;
  const outputs = await tempDir('self-out-');
  dirs.push(outputs);
  const children = Array.from({ length: n }, async (_, i) => {
    const dir = join(outputs, String(i));
    await mkdir(dir);
    const env = {
      PATH: path, HOME: process.env.HOME!,
      TEST_PLAN: 'go-plan', TEST_CASE: 'placement', TEST_RUN: run, TEST_GROUP_ID: 'single',
      TEST_GROUP_INSTANCE_COUNT: String(n), TEST_INSTANCE_COUNT: String(n), TEST_SUBNET: '127.1.0.0/16',
      TEST_INSTANCE_PARAMS: packParams({ 'remote-runners': JSON.stringify(runners), timeout_secs: '60' }),
      TEST_OUTPUTS_PATH: dir, TEST_TEMP_PATH: dir, TEST_START_TIME: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      SYNC_SERVICE_HOST: '127.0.0.1', SYNC_SERVICE_PORT: String(sync.port),
    };
    return execa(plan, [], { env, extendEnv: false, reject: false, all: true, timeout: 180_000 });
  });
  return { run, outputs, results: await Promise.all(children) };
}

describe('a Go plan that places itself', { timeout: 240_000 }, () => {
  it('runs each instance on the lab host remote-runners names, and brings its outputs back', async () => {
    const { run, outputs, results } = await instances(3, [{ name: 'localhost' }, { name: 'lab-h1', arch: 'x86_64-linux' }, { name: 'lab-h2', arch: 'x86_64-linux' }], `${bin}:${process.env.PATH!}`);
    for (const r of results) expect(r.exitCode, r.all).toBe(0);
    const hosts = await Promise.all([0, 1, 2].map(async (i) => (JSON.parse(await readFile(join(outputs, String(i), 'host.json'), 'utf8')) as { hostname: string }).hostname));
    expect(hosts.sort()).toEqual([hostname(), 'lab-h1', 'lab-h2'].sort());
    expect(await processesWithEnv('TEST_RUN', run)).toEqual([]);
    expect(await workDirs('lab-h1')).toEqual([]);
  });

  it('says what is missing when remote-runner is not on the PATH', async () => {
    const { results } = await instances(1, [{ name: 'lab-h1', arch: 'x86_64-linux' }], '/usr/bin:/bin');
    expect(results[0]!.exitCode).toBe(1);
    expect(results[0]!.stderr).toMatch(/^place: param remote-runners asks to place this instance on other hosts, but remote-runner is not on the PATH/m);
  });
});
