// tg-run against the real plan, with the exec:ts builder: outcomes, cleanup, layout.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { processesWithEnv } from '../helpers/leftovers.ts';
import { readResult, removeAll, startTgRun, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
afterEach(() => removeAll(dirs));

async function tgRun(testcase: string, instances: number, extra: string[] = []) {
  const outputs = await tempDir('tg-out-');
  dirs.push(outputs);
  const args = ['single', '--plan', '.', '--testcase', testcase, '--instances', String(instances), '--builder', 'exec:ts', '--outputs-dir', outputs, ...extra];
  const result = await startTgRun(args, { env: { PATH: process.env.PATH! } });
  return readResult(result, outputs);
}

describe('tg-run single with the exec:ts builder', () => {
  it('runs server-client with 3 instances on localhost and reports 3 successes', async () => {
    const r = await tgRun('server-client', 3);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows).toHaveLength(3);
    expect(r.rows.map((row) => [row.instance, row.host, row.outcome])).toEqual([
      ['single[000]', 'localhost', 'success'],
      ['single[001]', 'localhost', 'success'],
      ['single[002]', 'localhost', 'success'],
    ]);
    expect(r.stdout).toMatch(/<< single\[00\d\] >> /);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it.each([
    ['fail', 'failure', /fails on purpose/],
    ['crash', 'crash', /SIGKILL/],
  ])('reports the %s case as %s with a non-zero exit and nothing left running', async (testcase, outcome, detail) => {
    const r = await tgRun(testcase, 2);
    expect(r.exitCode).toBe(1);
    expect(r.rows.map((row) => row.outcome)).toEqual([outcome, outcome]);
    expect(r.stdout).toMatch(detail);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('stops a stalled run at --timeout, still prints the summary, and leaves no process behind', async () => {
    const r = await tgRun('stall', 2, ['--timeout', '4s', '--grace', '1s']);
    expect(r.exitCode).toBe(1);
    expect(r.rows.map((row) => row.outcome)).toEqual(['timeout', 'timeout']);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('stops every instance on Ctrl-C, prints the summary and exits 130', async () => {
    const outputs = await tempDir('tg-out-');
    dirs.push(outputs);
    const child = startTgRun(['single', '--plan', '.', '--testcase', 'stall', '--instances', '2', '--builder', 'exec:ts', '--outputs-dir', outputs, '--grace', '1s'], {
      env: { PATH: process.env.PATH! },
    });
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    for (let i = 0; i < 150 && (seen.match(/stalling/g) ?? []).length < 2; i++) await sleep(100);
    child.kill('SIGINT');
    const r = readResult(await child, outputs);
    expect(r.exitCode).toBe(130);
    expect(r.rows.map((row) => row.outcome)).toEqual(['cancelled', 'cancelled']);
    expect(await processesWithEnv('TEST_RUN', r.runId)).toEqual([]);
  });

  it('hands inspect every value verbatim and the exact environment contract', async () => {
    const values = {
      equals: 'a=b=c',
      spaces: '  leading and trailing  ',
      quotes: `it's "quoted" \`tick\``,
      subshell: '$(touch /tmp/pwned-by-param) ${HOME}',
      unicode: 'Grüße, 世界 🚀',
    };
    const params = Object.entries(values).flatMap(([k, v]) => ['--test-param', `${k}=${v}`]);
    const r = await tgRun('inspect', 1, params);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: param equals is not declared by test case inspect');
    const dump = JSON.parse(await readFile(join(r.outputsDir, 'remote-runner', r.runId, 'single', '0', 'runenv.json'), 'utf8')) as {
      env: Record<string, string>;
      params: Record<string, string>;
    };
    expect(dump.params).toMatchObject(values);
    expect(Object.keys(dump.env).sort()).toEqual(
      [
        'PATH', 'SYNC_SERVICE_HOST', 'SYNC_SERVICE_PORT', 'TEST_BRANCH', 'TEST_CAPTURE_PROFILES', 'TEST_CASE', 'TEST_DISABLE_METRICS',
        'TEST_GROUP_ID', 'TEST_GROUP_INSTANCE_COUNT', 'TEST_INSTANCE_COUNT', 'TEST_INSTANCE_PARAMS', 'TEST_INSTANCE_ROLE', 'TEST_OUTPUTS_PATH',
        'TEST_PLAN', 'TEST_REPO', 'TEST_RUN', 'TEST_SIDECAR', 'TEST_START_TIME', 'TEST_SUBNET', 'TEST_TAG', 'TEST_TEMP_PATH',
      ].sort(),
    );
    expect(dump.env.TEST_RUN).toBe(r.runId);
    expect(dump.env.TEST_START_TIME).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    await expect(readFile('/tmp/pwned-by-param')).rejects.toThrow();
  });

  it('writes outputs under <plan>/<run>/<group>/<i> and collects them into <run>.tgz', async () => {
    const cwd = await tempDir('tg-collect-');
    dirs.push(cwd);
    const outputs = join(cwd, 'out');
    const result = await startTgRun(
      ['single', '--plan', process.cwd(), '--testcase', 'inspect', '--instances', '2', '--builder', 'exec:ts', '--outputs-dir', outputs, '--collect'],
      { cwd, env: { PATH: process.env.PATH! } },
    );
    const r = readResult(result, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    const listing = (await execa('tar', ['tzf', join(cwd, `${r.runId}.tgz`)])).stdout.split('\n');
    expect(listing).toEqual(expect.arrayContaining([`${r.runId}/single/0/runenv.json`, `${r.runId}/single/1/runenv.json`]));
    expect(listing.every((name) => name.startsWith(`${r.runId}/`))).toBe(true);
  });

  it.each([
    [['--testcase', 'nope', '--instances', '1'], /has no test case "nope"/],
    [['--testcase', 'ok', '--instances', '999'], /takes 1 to \d+ instances, got 999/],
    [['--testcase', 'ok', '--test-param', 'remote-runners=[oops'], /param remote-runners: expected JSON/],
    [['--testcase', 'ok', '--timeout', 'soon'], /--timeout "soon"/],
  ])('rejects bad input %j with one line and a non-zero exit', async (args, message) => {
    const result = await startTgRun(['single', '--plan', '.', '--builder', 'exec:ts', ...args], { env: { PATH: process.env.PATH! } });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});

describe('tg-run composition', () => {
  it('runs every group of a composition with its own params and group id', async () => {
    const dir = await tempDir('tg-comp-');
    dirs.push(dir);
    const file = join(dir, 'composition.toml');
    await writeFile(
      file,
      [
        '[metadata]',
        'name = "two-groups"',
        '[global]',
        'plan = "remote-runner"',
        'case = "inspect"',
        'builder = "exec:ts"',
        'runner = "local:exec"',
        'total_instances = 3',
        '[global.run.test_params]',
        'shared = "from global"',
        '[[groups]]',
        'id = "alpha"',
        '[groups.instances]',
        'count = 1',
        '[groups.run.test_params]',
        'who = "alpha"',
        '[[groups]]',
        'id = "beta"',
        '[groups.instances]',
        'count = 2',
        '[groups.run.test_params]',
        'who = "beta"',
        '',
      ].join('\n'),
    );
    const outputs = join(dir, 'out');
    const r = readResult(await startTgRun(['composition', '-f', file, '--plan', '.', '--outputs-dir', outputs], { env: { PATH: process.env.PATH! } }), outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows.map((row) => [row.instance, row.group, row.outcome])).toEqual([
      ['alpha[000]', 'alpha', 'success'],
      ['beta[000]', 'beta', 'success'],
      ['beta[001]', 'beta', 'success'],
    ]);
    const beta = JSON.parse(await readFile(join(outputs, 'remote-runner', r.runId, 'beta', '1', 'runenv.json'), 'utf8')) as {
      env: Record<string, string>;
      params: Record<string, string>;
    };
    expect(beta.params).toMatchObject({ shared: 'from global', who: 'beta' });
    expect(beta.env).toMatchObject({ TEST_GROUP_ID: 'beta', TEST_GROUP_INSTANCE_COUNT: '2', TEST_INSTANCE_COUNT: '3' });
  });
});
