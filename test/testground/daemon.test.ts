// Integration test of scripts/testground: Testground's real daemon v0.6.0 runs an sdk-go plan
// with the exec:go builder and the local:exec runner, against the real Go sync service and
// InfluxDB in containers of our own dockerd; `down` leaves nothing behind.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testground, testgroundDown, testgroundUp, type TestgroundEnv } from '../helpers/testground.ts';
import { repoRoot } from '../helpers/tg-run.ts';

const script = join(repoRoot, 'scripts/testground');
const stateDir = '/var/lib/remote-runner-testground';
const runDir = '/run/remote-runner-testground';
const plan = join(repoRoot, 'test/testground/fixture-plan');
const instances = 3;

const text = (out: unknown): string => stripVTControlCharacters(String(out));

// A process that scripts/testground started, or that belongs to one of its containers.
async function leftoverProcesses(tg: TestgroundEnv): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const [stat, cmdline, cgroup] = await Promise.all(['stat', 'cmdline', 'cgroup'].map((f) => readFile(`/proc/${pid}/${f}`, 'latin1')));
      // Zombies are already dead; they only wait for their parent to reap them.
      if (stat!.slice(stat!.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const args = cmdline!.replaceAll('\0', ' ');
      const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
      const environ = exe === tg.TESTGROUND_BIN ? await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '') : '';
      if (
        args.includes(`${stateDir}/`) ||
        args.includes(`${runDir}/`) ||
        exe.startsWith(`${stateDir}/`) ||
        environ.includes(`TESTGROUND_HOME=${tg.TESTGROUND_HOME}\0`) ||
        /-container-ip 10\.232\./.test(args) ||
        cgroup!.includes(':/remote-runner-testground/')
      ) {
        found.push(`${pid} ${args}`);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

const canConnect = async (port: number): Promise<boolean> =>
  (await execa('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { reject: false, timeout: 5_000 })).exitCode === 0;

describe('scripts/testground', () => {
  let tg: TestgroundEnv;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'testground-daemon-'));
    tg = await testgroundUp();
  }, 960_000);

  afterAll(async () => {
    await testgroundDown();
    await rm(work, { recursive: true, force: true });
  });

  it('passes the local:exec health check with the control network on our own subnet', async () => {
    const check = await testground(['healthcheck', '--runner', 'local:exec']);
    expect(check.exitCode, text(check.all)).toBe(0);
    for (const name of ['control-network', 'local-outputs-dir', 'local-grafana', 'local-redis', 'local-sync-service', 'local-influxdb']) {
      expect(text(check.all)).toMatch(new RegExp(`^- ${name}: ok;`, 'm'));
    }
    const bridge = await execa('ip', ['-o', '-4', 'addr', 'show', 'dev', 'tg-control0']);
    expect(bridge.stdout).toContain('inet 10.232.0.1/16');
    // Published ports answer on loopback only.
    const listening = (await execa('ss', ['-Hltn'])).stdout;
    expect(listening).toMatch(/127\.0\.0\.1:5050\s/);
    expect(listening).toMatch(/127\.0\.0\.1:8086\s/);
    expect(listening).toMatch(/127\.0\.0\.1:8042\s/);
    expect(listening).not.toMatch(/(0\.0\.0\.0|\*|\[::\]):(5050|8086|8042)\s/);
  });

  it('runs three instances of an sdk-go plan that meet at a barrier and collects each one\'s file', async () => {
    const imported = await testground(['plan', 'import', '--from', plan, '--name', 'greeter']);
    expect(imported.exitCode, text(imported.all)).toBe(0);

    const run = await testground(
      ['run', 'single', '--plan', 'greeter', '--testcase', 'greet', '--builder', 'exec:go', '--runner', 'local:exec', '--instances', String(instances), '--wait'],
      { timeout: 300_000 },
    );
    const out = text(run.all);
    expect(run.exitCode, out).toBe(0);
    expect(out).toMatch(/\]: success$/m);
    const runId = /finished run with ID: (\w+)/.exec(out)?.[1];
    expect(runId, out).toBeDefined();

    const archive = join(work, `${runId}.tgz`);
    const collected = await testground(['collect', '--runner', 'local:exec', '--output', archive, runId!]);
    expect(collected.exitCode, text(collected.all)).toBe(0);
    const unpacked = join(work, 'outputs');
    await execa('mkdir', ['-p', unpacked]);
    await execa('tar', ['-xzf', archive, '-C', unpacked]);

    const greetings: string[] = [];
    for (let i = 0; i < instances; i++) {
      const dir = join(unpacked, runId!, 'single', String(i));
      const greeting = (await readFile(join(dir, 'greeting.txt'), 'utf8')).trim();
      greetings.push(greeting);
      // The message the instance recorded, in its run.out.
      expect(await readFile(join(dir, 'run.out'), 'utf8')).toContain(greeting);
    }
    // Each instance got its own sequence number from the sync service.
    expect(greetings.sort()).toEqual([1, 2, 3].map((n) => `hello from instance ${n} of ${instances}`));
  });

  it('is a no-op to bring up again while the daemon is up', async () => {
    const pidBefore = await readFile(`${runDir}/daemon.pid`, 'utf8');
    const again = await execa(script, ['up'], { reject: false, stdin: 'ignore', timeout: 60_000 });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toContain('already up');
    expect(await readFile(`${runDir}/daemon.pid`, 'utf8')).toBe(pidBefore);
  });

  it('leaves no process, container, network, mount or state behind after down, and may go down twice', async () => {
    const down = await execa(script, ['down'], { reject: false, stdin: 'ignore', timeout: 120_000 });
    expect(down.exitCode, down.stderr).toBe(0);

    expect(await leftoverProcesses(tg)).toEqual([]);
    const links = (await execa('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/tg-control0|veth.*master tg-control0/);
    expect((await execa('ip', ['-o', '-4', 'addr', 'show'])).stdout).not.toContain('10.232.');
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(stateDir);
    expect(mounts).not.toContain(runDir);
    expect(existsSync(stateDir)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    const cgroups = (await readdir('/sys/fs/cgroup')).filter((c) => existsSync(`/sys/fs/cgroup/${c}/remote-runner-testground`));
    expect(cgroups).toEqual([]);
    expect(await canConnect(8042)).toBe(false);
    // The binaries stay cached for the next `up`.
    expect(existsSync(tg.TESTGROUND_BIN)).toBe(true);

    const again = await execa(script, ['down'], { reject: false, stdin: 'ignore', timeout: 60_000 });
    expect(again.exitCode, again.stderr).toBe(0);
  });
});
