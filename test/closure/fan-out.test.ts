// Fan-out on lab hosts: hosts that hold the closure send it to the next ones,
// with a credential made for that one copy, and nothing of it is left on any
// host afterwards: not when the copy is done, not when hosts cannot reach each
// other, and not when the controller is killed in the middle of a relay.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyClosure } from '../../helpers/closure/copy.ts';
import { localClosure } from '../../helpers/closure/store.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { buildRunner, labDown, labExec, labUp, type RunnerBuild } from '../helpers/lab.ts';
import { readResult, removeAll, repoRoot, startTgRun, tempDir } from '../helpers/tg-run.ts';

const HOSTS = ['lab-h1', 'lab-h2', 'lab-h3', 'lab-h4'];
const dirs: string[] = [];
let build: RunnerBuild;
const lab = (...args: string[]) => execa(`${repoRoot}scripts/lab`, args, { timeout: 120_000, stdin: 'ignore' });
const runners = (hosts: string[]) => `remote-runners=${JSON.stringify(hosts.map((name) => ({ name, arch: 'x86_64-linux' })))}`;
// One copy from this machine at a time: the first host's copy comes from here, and
// later hosts get theirs from here or from a host that holds it by then.
const ONE_COPY = 'remote-runners-max-concurrent-copy=1';

// Run the repository's plan with tg-run on `hosts`, one instance each.
async function tgRun(hosts: string[], ...params: string[]) {
  const outputs = await tempDir('fan-out-');
  dirs.push(outputs);
  const args = ['single', '--plan', '.', '--testcase', 'ok', '--builder', 'exec:ts', '--instances', String(hosts.length), '--outputs-dir', outputs];
  for (const param of [runners(hosts), ...params]) args.push('--test-param', param);
  return { child: startTgRun(args, { env: { PATH: process.env.PATH! } }), outputs };
}

// Empty the hosts' stores of everything a run put there.
async function emptyStores(): Promise<void> {
  await labDown();
  await labUp(4);
  for (const host of HOSTS) await lab('substituter', host, 'none');
}

// What of a relay credential a host still holds: keys, key dirs, agents, copies.
async function relayLeftovers(host: string): Promise<string[]> {
  const found = await labExec(host, [
    'sh',
    '-c',
    'grep -h remote-runner-relay /root/.ssh/authorized_keys 2>/dev/null; ls -d /tmp/remote-runner-relay-* /tmp/remote-runner-spool-* 2>/dev/null; ' +
      'for p in /proc/[0-9]*; do c=$(tr "\\0" " " <$p/cmdline 2>/dev/null); case $c in ssh-agent*|*nix-store\\ --export*|*nix-store\\ --import*|tail\\ *|flock\\ *) echo "$c";; esac; done',
  ]);
  return found.stdout.split('\n').filter((line) => line.trim() !== '').map((line) => `${host}: ${line}`);
}

// Nothing of any relay on any host, within 15 s.
async function nothingOfRelaysLeft(): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const left = (await Promise.all(HOSTS.map(relayLeftovers))).flat();
    if (left.length === 0 || Date.now() > deadline) {
      expect(left, 'relay credentials, agents and copies left on the hosts').toEqual([]);
      return;
    }
    await sleep(250);
  }
}

beforeAll(async () => {
  build = await buildRunner();
  await labUp(4);
}, 600_000);
afterAll(labDown);
afterEach(() => removeAll(dirs));

describe('fan-out between lab hosts', { timeout: 300_000 }, () => {
  it('relays to hosts from hosts that hold the closure while this machine’s copy slot is taken', async () => {
    await emptyStores();
    const { child, outputs } = await tgRun(HOSTS, ONE_COPY);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows.map((row) => row.outcome)).toEqual(Array(4).fill('success'));
    const copies = r.stderr.split('\n').filter((line) => /: copy, \d+ paths/.test(line));
    expect(copies, r.stderr).toHaveLength(4);
    // Which hosts relay depends on who finishes first; at least one must (the doubling
    // itself is shown in test/remote-runner/senders.test.ts).
    expect(copies.filter((line) => /relayed from lab-h\d/.test(line)).length, r.stderr).toBeGreaterThanOrEqual(1);
    // Each relay was sent by a host that got the closure before it.
    for (const line of copies.filter((l) => l.includes('relayed'))) {
      const [, target, source] = /(lab-h\d) .*relayed from (lab-h\d)/.exec(line)!;
      expect(copies.findIndex((l) => l.includes(`${source} (`))).toBeLessThan(copies.indexOf(line));
      expect(source).not.toBe(target);
    }
    await nothingOfRelaysLeft();
  });

  it('streams the closure down a chain on slow links: a host feeds the next one while its own copy still arrives', async () => {
    await emptyStores();
    // Slow links: every host asks for its copy while the first one still runs.
    for (const host of HOSTS) await lab('shape', host, '--rate', '40mbit');
    try {
      const { child, outputs } = await tgRun(HOSTS, ONE_COPY);
      const r = readResult(await child, outputs);
      expect(r.exitCode, r.stderr).toBe(0);
      const copies = r.stderr.split('\n').filter((line) => /: copy, \d+ paths/.test(line));
      expect(copies.filter((line) => !line.includes('relayed')), r.stderr).toHaveLength(1);
      expect(copies.filter((line) => /relayed from lab-h\d, as it arrived there \((zstd|none)\)/.test(line)).length, r.stderr).toBeGreaterThanOrEqual(2);
    } finally {
      for (const host of HOSTS) await lab('unshape', host);
    }
    await nothingOfRelaysLeft();
  });

  it('copies from this machine instead, within a bound, when hosts cannot reach each other', async () => {
    await emptyStores();
    // Each host may only talk to this machine (the lab bridge's address).
    for (const host of HOSTS) {
      const blocked = await labExec(host, ['sh', '-c', 'iptables -A OUTPUT -d 10.231.0.1 -j ACCEPT && iptables -A OUTPUT -d 10.231.0.0/16 -j DROP']);
      expect(blocked.exitCode, blocked.stderr).toBe(0);
    }
    const started = Date.now();
    const { child, outputs } = await tgRun(HOSTS, ONE_COPY);
    const r = readResult(await child, outputs);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rows.map((row) => row.outcome)).toEqual(Array(4).fill('success'));
    expect(r.stderr).toMatch(/relay from lab-h\d.*copying from this machine instead/);
    expect(r.stderr).not.toMatch(/relayed from/);
    // Two failed relays cost at most their connect bound each.
    expect(Date.now() - started).toBeLessThan(180_000);
    await nothingOfRelaysLeft();
  });

  it('leaves no relay credential on any host when the process that started a relay is killed in its middle', async () => {
    await emptyStores();
    const ssh = await openSsh(await resolveSshTarget('lab-h1'), { signal: AbortSignal.timeout(30_000) });
    try {
      await copyClosure(ssh, 'lab-h1', build.plan, { signal: AbortSignal.timeout(240_000) });
    } finally {
      await ssh.close();
    }
    // lab-h2's link is slow, so that the relay to it is still running when its controller dies.
    await lab('shape', 'lab-h2', '--rate', '8mbit');
    try {
      const child = execa('node', ['--import', 'tsx', `${repoRoot}test/helpers/relay-child.ts`, 'lab-h1', 'lab-h2', ...(await localClosure([build.plan]))], { reject: false, all: true, timeout: 240_000 });
      let keyInstalled = false;
      for (let i = 0; i < 600 && !keyInstalled && child.exitCode === null; i++) {
        keyInstalled = (await labExec('lab-h2', ['grep', '-q', 'remote-runner-relay', '/root/.ssh/authorized_keys'])).exitCode === 0;
        if (!keyInstalled) await sleep(100);
      }
      if (!keyInstalled) child.kill('SIGKILL');
      expect(keyInstalled, `the relay key on lab-h2 while the relay runs (${(await Promise.race([child, sleep(0)]))?.all ?? 'relaying'})`).toBe(true);
      await sleep(1000);
      const running = await relayLeftovers('lab-h1');
      expect(running.some((line) => line.includes('ssh-agent')), 'the relay’s agent on lab-h1').toBe(true);
      expect(running.some((line) => line.includes('nix-store --export')), 'the relay’s copy on lab-h1').toBe(true);
      child.kill('SIGKILL');
      expect((await child).stdout).not.toContain('relayed');
      await nothingOfRelaysLeft();
    } finally {
      await lab('unshape', 'lab-h2');
    }
  });
});
