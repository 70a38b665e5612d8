// Shaped lab links: a rate (tbf) and a loss (iptables) set by the kernel on the host's link,
// a delay by the lab's Toxiproxy that the host's alias goes through; measured for real.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type Options, type Result } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSsh } from '../../helpers/ssh/session.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { labDown, labUp } from '../helpers/lab.ts';
import { repoRoot } from '../helpers/tg-run.ts';

const lab = join(repoRoot, 'scripts/lab');
const sshConf = '/etc/ssh/ssh_config.d/remote-runner-lab.conf';
const knownHosts = '/var/lib/remote-runner-lab/known_hosts';
const proxyApi = { host: '127.0.0.1', port: 28474 };
// The argv[0] of the lab's Toxiproxy.
const proxyName = 'remote-runner-lab-proxy';
const hosts = ['lab-h1', 'lab-h2'] as const;
const nixEnv = {
  env: { NIX_CONFIG: 'build-users-group =\nsandbox = false\nexperimental-features = nix-command\n' },
} satisfies Options;

// Run a command to completion, bounded in time; never throws for a non-zero exit.
async function run(file: string, args: string[], options: Options = {}, ms = 30_000): Promise<Result> {
  return await execa(file, args, { reject: false, stdin: 'ignore', timeout: ms, cancelSignal: AbortSignal.timeout(ms + 1_000), ...options });
}

// Run a command that must succeed; its failure message carries its output.
async function ok(file: string, args: string[], options: Options = {}, ms = 30_000): Promise<string> {
  const result = await run(file, args, options, ms);
  if (result.exitCode !== 0 || result.timedOut) {
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr)} ${String(result.stdout)}`);
  }
  return String(result.stdout).trim();
}

const labCmd = async (...args: string[]): Promise<string> => await ok(lab, args, {}, 60_000);

// The wall time of a command that must succeed, in seconds.
async function secondsOf(script: string): Promise<number> {
  const start = performance.now();
  await ok('bash', ['-c', script], {}, 60_000);
  return (performance.now() - start) / 1000;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// One ssh connection to a shell that echoes each line: one line there and back is one round trip.
function openEcho(host: string) {
  const child = execa('ssh', [host, 'while read -r line; do echo "$line"; done'], {
    stdin: 'pipe',
    reject: false,
    cancelSignal: AbortSignal.timeout(60_000),
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let sent = 0;
  return {
    // `count` round trips one after the other, in ms, after two that warm up.
    async roundTrips(count: number): Promise<number[]> {
      const times: number[] = [];
      for (let i = 0; i < count + 2; i++) {
        const line = `round trip ${sent++}`;
        const start = performance.now();
        child.stdin!.write(`${line}\n`);
        const reply = await lines.next();
        if (reply.done || reply.value !== line) {
          const ended = await child;
          throw new Error(`ssh ${host}: no echo of '${line}' (exit ${ended.exitCode}): ${String(ended.stderr)}`);
        }
        if (i >= 2) times.push(performance.now() - start);
      }
      return times;
    },
    async close(): Promise<void> {
      child.stdin!.end();
      await child;
    },
  };
}

// The median of 20 round trips through `ssh host`, in ms.
async function medianRoundTrip(host: string): Promise<number> {
  const echo = openEcho(host);
  try {
    return median(await echo.roundTrips(20));
  } finally {
    await echo.close();
  }
}

// The alias as OpenSSH resolves it.
async function resolved(host: string): Promise<{ hostname: string; port: string; hostKeyAlias: string | undefined }> {
  const config = await ok('ssh', ['-G', host]);
  const get = (key: string): string | undefined => new RegExp(`^${key} (.*)$`, 'm').exec(config)?.[1];
  return { hostname: get('hostname')!, port: get('port')!, hostKeyAlias: get('hostkeyalias') };
}

// Every live process (not a zombie) whose argv[0] is the lab's Toxiproxy.
async function proxyProcesses(): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [cmdline, stat] = await Promise.all([readFile(`/proc/${name}/cmdline`, 'latin1'), readFile(`/proc/${name}/stat`, 'latin1')]);
      if (cmdline.split('\0')[0] === proxyName && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const proxyApiAnswers = async (): Promise<boolean> =>
  (await run('bash', ['-c', `exec 3<>/dev/tcp/${proxyApi.host}/${proxyApi.port}`], {}, 5_000)).exitCode === 0;

// The tbf qdiscs on the host's link: the root namespace's end, then the host's.
async function tbfs(host: string): Promise<string[]> {
  const outer = await ok('tc', ['qdisc', 'show', 'dev', `veth-${host}`]);
  const inner = await ok('tc', ['-n', host, 'qdisc', 'show', 'dev', 'eth0']);
  return [outer, inner].filter((line) => /\btbf\b/.test(line));
}

// gso_max_segs of both ends of the host's link.
async function gsoMaxSegs(host: string): Promise<number[]> {
  const outer = JSON.parse(await ok('ip', ['-d', '-j', 'link', 'show', `veth-${host}`])) as Array<{ gso_max_segs: number }>;
  const inner = JSON.parse(await ok('ip', ['-n', host, '-d', '-j', 'link', 'show', 'eth0'])) as Array<{ gso_max_segs: number }>;
  return [outer[0]!.gso_max_segs, inner[0]!.gso_max_segs];
}

// The host's packets on eth0 (both directions, as its iptables chains count them) and those dropped.
async function lossCounters(host: string): Promise<{ packets: number; dropped: number }> {
  const count = async (chain: string): Promise<string> => await ok('ip', ['netns', 'exec', host, 'iptables', '-w', '10', '-n', '-v', '-x', '-L', chain]);
  const jumps = (listing: string): number =>
    listing.split('\n').filter((line) => /\blab-loss\b/.test(line)).reduce((n, line) => n + Number(line.trim().split(/\s+/)[0]), 0);
  const drops = (listing: string): number =>
    listing.split('\n').filter((line) => /\bDROP\b/.test(line)).reduce((n, line) => n + Number(line.trim().split(/\s+/)[0]), 0);
  const [input, output, chain] = await Promise.all([count('INPUT'), count('OUTPUT'), count('lab-loss')]);
  return { packets: jumps(input) + jumps(output), dropped: drops(chain) };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('scripts/lab shape', () => {
  let plainConf = '';

  beforeAll(async () => {
    await labUp(hosts.length);
    plainConf = await readFile(sshConf, 'utf8');
    // The first delay builds Toxiproxy through the Go module proxy (minutes on a fresh machine).
    await ok(lab, ['shape', 'lab-h1', '--delay', '1ms'], {}, 900_000);
  }, 1_200_000);

  afterAll(async () => {
    await labDown();
  }, 120_000);

  beforeEach(async () => {
    for (const host of hosts) await labCmd('unshape', host);
  }, 60_000);

  it.each([
    [['--rate', '50'], /--rate must be a number with a unit of bit, kbit, mbit or gbit .*got '50'/],
    [['--rate', '0.5kbit'], /--rate must be from 1kbit to 100gbit, got 0\.5kbit/],
    [['--delay', '20'], /--delay must be a round-trip time with a unit of ms or s, e\.g\. 20ms; got '20'/],
    [['--delay', '0.5ms'], /--delay 0\.5ms is not a whole number of milliseconds: Toxiproxy's latency toxic counts whole milliseconds/],
    [['--loss', '1'], /--loss must be a percentage, e\.g\. 0\.1% or 2%; got '1'/],
    [['--loss', '60%'], /--loss must be at most 50%/],
    [['--jitter', '1ms'], /unknown option '--jitter'/],
    [[], /shape lab-h1: nothing to shape: give --rate, --delay or --loss/],
  ])('refuses shape lab-h1 %j with a message that says what it expected', { timeout: 20_000 }, async (args, message) => {
    const result = await run(lab, ['shape', 'lab-h1', ...args]);
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toMatch(message);
    expect(await labCmd('status')).toMatch(/^lab-h1\s.*\s-$/m);
  });

  it('caps a transfer to and from the host at the shaped rate, and the unshaped link is much faster', { timeout: 60_000 }, async () => {
    // 20 MB at 50 Mbit/s is 3.2 s on the wire, before SSH's and TCP's own bytes.
    const upload = "head -c 20000000 /dev/zero | ssh -o Compression=no lab-h1 'cat > /dev/null'";
    const download = "ssh -o Compression=no lab-h1 'head -c 20000000 /dev/zero' > /dev/null";
    const plain = await secondsOf(upload);

    expect(await labCmd('shape', 'lab-h1', '--rate', '50mbit')).toBe('lab-h1 rate=50mbit');
    expect(await labCmd('status')).toMatch(/^lab-h1\s.*\srate=50mbit$/m);
    // Only the link is shaped: the alias still names the host itself.
    expect(await resolved('lab-h1')).toEqual({ hostname: '10.231.0.11', port: '22', hostKeyAlias: undefined });
    const up = await secondsOf(upload);
    const down = await secondsOf(download);
    for (const shaped of [up, down]) {
      expect(shaped).toBeGreaterThanOrEqual(3.0);
      expect(shaped).toBeLessThan(6.4);
    }
    expect(plain).toBeLessThan(up / 2);
    expect((await tbfs('lab-h1')).map((line) => /rate 50Mbit/.test(line))).toEqual([true, true]);
  });

  it('shapes this machine’s uplink into the lab, shared by every host, and not the traffic the hosts send', { timeout: 60_000 }, async () => {
    // 10 MB to each of two hosts at once shares 50 Mbit/s: 20 MB is 3.2 s on the wire.
    const both = "for h in lab-h1 lab-h2; do head -c 10000000 /dev/zero | ssh -o Compression=no $h 'cat > /dev/null' & done; wait";
    const fromHost = "ssh -o Compression=no lab-h1 'head -c 20000000 /dev/zero' > /dev/null";
    try {
      expect(await labCmd('uplink', '--rate', '50mbit')).toBe('uplink rate=50mbit');
      expect(await labCmd('status')).toMatch(/^uplink: 50Mbit$/m);
      const shared = await secondsOf(both);
      expect(shared).toBeGreaterThanOrEqual(3.0);
      expect(shared).toBeLessThan(6.4);
      // What the hosts send crosses no uplink.
      expect(await secondsOf(fromHost)).toBeLessThan(shared / 2);
    } finally {
      expect(await labCmd('uplink', 'none')).toBe('uplink -');
    }
    expect(await labCmd('status')).toMatch(/^uplink: not shaped$/m);
  });

  it('adds the round-trip time asked for with --delay, through the alias, for ssh, nix copy and our own SSH sessions', { timeout: 60_000 }, async () => {
    const plain = await medianRoundTrip('lab-h1');
    expect(await labCmd('shape', 'lab-h1', '--delay', '20ms')).toMatch(/^lab-h1 delay=20ms via=127\.0\.0\.1:\d+$/);
    const alias = await resolved('lab-h1');
    expect(alias).toEqual({ hostname: '127.0.0.1', port: expect.stringMatching(/^\d+$/), hostKeyAlias: 'lab-h1' });
    expect(await labCmd('status')).toMatch(new RegExp(`^lab-h1\\s.*\\sdelay=20ms via=127\\.0\\.0\\.1:${alias.port}$`, 'm'));

    const delayed = await medianRoundTrip('lab-h1');
    expect(delayed - plain).toBeGreaterThanOrEqual(19.5);
    expect(delayed - plain).toBeLessThan(25);
    // lab-h2 is not shaped.
    expect(await medianRoundTrip('lab-h2')).toBeLessThan(5);

    // This project's own SSH code resolves the alias with ssh -G and checks the key under lab-h1.
    const target = await resolveSshTarget('lab-h1', { signal: AbortSignal.timeout(10_000) });
    expect({ hostname: target.hostname, port: target.port, hostKeyAlias: target.hostKeyAlias }).toEqual({ hostname: '127.0.0.1', port: Number(alias.port), hostKeyAlias: 'lab-h1' });
    const session = await openSsh(target, { signal: AbortSignal.timeout(20_000) });
    try {
      expect((await session.run('hostname', { signal: AbortSignal.timeout(10_000) })).stdout.trim()).toBe('lab-h1');
    } finally {
      await session.close();
    }

    const dir = await mkdtemp(join(tmpdir(), 'lab-shaping-nix-'));
    let path = '';
    try {
      const file = join(dir, 'lab-shaping-copy.txt');
      await writeFile(file, `copied through the proxy by ${process.pid} at ${Date.now()}\n`);
      path = await ok('nix-store', ['--add', file], nixEnv);
      await ok('nix', ['copy', '--to', 'ssh://lab-h1', path], nixEnv, 40_000);
      expect(await ok('ssh', ['lab-h1', `cat ${path}`])).toMatch(/^copied through the proxy/);
    } finally {
      if (path) await run('nix-store', ['--delete', path], nixEnv);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('changes the delay of a running connection when shape is run again, through the same proxy', { timeout: 60_000 }, async () => {
    await labCmd('shape', 'lab-h1', '--delay', '20ms');
    const before = await resolved('lab-h1');
    const echo = openEcho('lab-h1');
    try {
      const first = median(await echo.roundTrips(10));
      expect(first).toBeGreaterThanOrEqual(19.5);
      expect(first).toBeLessThan(25);
      // A second shape replaces the first: a rate added, the delay changed in place.
      expect(await labCmd('shape', 'lab-h1', '--delay', '6ms', '--rate', '1gbit')).toBe(`lab-h1 rate=1gbit delay=6ms via=127.0.0.1:${before.port}`);
      const second = median(await echo.roundTrips(10));
      expect(second).toBeGreaterThanOrEqual(5.5);
      expect(second).toBeLessThan(11);
    } finally {
      await echo.close();
    }
    expect(await resolved('lab-h1')).toEqual(before);
    expect(await tbfs('lab-h1')).toHaveLength(2);

    // A shape without --delay takes the alias off the proxy, and without --rate the rate off.
    expect(await labCmd('shape', 'lab-h1', '--loss', '0.1%')).toBe('lab-h1 loss=0.1%');
    expect(await resolved('lab-h1')).toEqual({ hostname: '10.231.0.11', port: '22', hostKeyAlias: undefined });
    expect(await tbfs('lab-h1')).toEqual([]);
    expect(await proxyProcesses()).toEqual([]);
  });

  it('keeps host keys pinned through the proxy: a changed or unknown key is refused', { timeout: 40_000 }, async () => {
    await labCmd('shape', 'lab-h1', '--delay', '2ms');
    const dir = await mkdtemp(join(tmpdir(), 'lab-shaping-keys-'));
    try {
      // lab-h2's key filed under lab-h1: the key lab-h1 presents through the proxy has changed.
      const pinned = await readFile(knownHosts, 'utf8');
      const h2Key = pinned.split('\n').find((line) => line.startsWith('10.231.0.12,'))!.split(' ').slice(1, 3).join(' ');
      const h1Key = pinned.split('\n').find((line) => line.startsWith('10.231.0.11,'))!.split(' ').slice(1, 3).join(' ');
      const wrong = join(dir, 'wrong');
      await writeFile(wrong, `lab-h1 ${h2Key}\n`);
      const changed = await run('ssh', ['-o', `UserKnownHostsFile=${wrong}`, 'lab-h1', 'true']);
      expect(changed.exitCode).toBe(255);
      expect(String(changed.stderr)).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);

      // The right key filed under the proxy's address only: the key is looked up as lab-h1.
      const { port } = await resolved('lab-h1');
      const byAddress = join(dir, 'by-address');
      await writeFile(byAddress, `[127.0.0.1]:${port} ${h1Key}\n10.231.0.11 ${h1Key}\n`);
      const unknown = await run('ssh', ['-o', `UserKnownHostsFile=${byAddress}`, 'lab-h1', 'true']);
      expect(unknown.exitCode).toBe(255);
      expect(String(unknown.stderr)).toMatch(/Host key verification failed/);

      // This project's SSH code refuses the changed key too.
      const target = await resolveSshTarget('lab-h1', { signal: AbortSignal.timeout(10_000) });
      const refused = await openSsh({ ...target, userKnownHostsFiles: [wrong], globalKnownHostsFiles: [] }, { signal: AbortSignal.timeout(20_000) }).then(
        async (session) => {
          await session.close();
          return undefined;
        },
        (error: unknown) => error as Error,
      );
      expect(refused?.message).toMatch(/host key for lab-h1 has CHANGED/);

      expect(await ok('ssh', ['lab-h1', 'hostname'])).toBe('lab-h1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drops the share of packets asked for with --loss, in both directions, and TCP still delivers every byte', { timeout: 60_000 }, async () => {
    expect(await labCmd('shape', 'lab-h1', '--loss', '2%')).toBe('lab-h1 loss=2%');
    // One dropped packet is one segment, not a 64 KB super-packet.
    expect(await gsoMaxSegs('lab-h1')).toEqual([1, 1]);
    const before = await lossCounters('lab-h1');

    const dir = await mkdtemp(join(tmpdir(), 'lab-shaping-loss-'));
    try {
      const data = randomBytes(4_000_000);
      const file = join(dir, 'payload');
      await writeFile(file, data);
      expect(await ok('bash', ['-c', `ssh lab-h1 'cat > /tmp/payload && sha256sum /tmp/payload' < ${file}`])).toMatch(new RegExp(`^${sha256(data)} `));
      const back = await run('ssh', ['lab-h1', 'cat /tmp/payload'], { encoding: 'buffer' });
      expect(back.exitCode).toBe(0);
      expect(sha256(Buffer.from(back.stdout as Uint8Array))).toBe(sha256(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const after = await lossCounters('lab-h1');
    const packets = after.packets - before.packets;
    const share = (after.dropped - before.dropped) / packets;
    // About 6,500 packets (data and ACKs): 2% of them is 130, give or take 11 (one standard
    // deviation); the bounds are four of them away.
    expect(packets).toBeGreaterThan(4_000);
    expect(share).toBeGreaterThan(0.013);
    expect(share).toBeLessThan(0.027);
  });

  it('restores the plain alias and link with unshape: no qdisc, no drops, no proxy', { timeout: 40_000 }, async () => {
    await labCmd('shape', 'lab-h1', '--rate', '100mbit', '--delay', '20ms', '--loss', '0.1%');
    expect(await readFile(sshConf, 'utf8')).not.toBe(plainConf);
    expect(await proxyProcesses()).toHaveLength(1);

    expect(await labCmd('unshape', 'lab-h1')).toBe('lab-h1 -');
    expect(await readFile(sshConf, 'utf8')).toBe(plainConf);
    expect(await resolved('lab-h1')).toEqual({ hostname: '10.231.0.11', port: '22', hostKeyAlias: undefined });
    expect(await tbfs('lab-h1')).toEqual([]);
    expect(await gsoMaxSegs('lab-h1')).toEqual([65_535, 65_535]);
    expect((await run('ip', ['netns', 'exec', 'lab-h1', 'iptables', '-w', '10', '-n', '-L', 'lab-loss'])).exitCode).not.toBe(0);
    expect(await proxyProcesses()).toEqual([]);
    expect(await proxyApiAnswers()).toBe(false);
    expect(await labCmd('status')).toMatch(/^lab-h1\s+10\.231\.0\.11\s+\d+\s+up\s+up\s+-$/m);
    expect(await medianRoundTrip('lab-h1')).toBeLessThan(5);
    // unshape of a host that is not shaped changes nothing.
    expect(await labCmd('unshape', 'lab-h2')).toBe('lab-h2 -');
    expect(await readFile(sshConf, 'utf8')).toBe(plainConf);
  });

  it('leaves nothing behind after down: no qdisc, no proxy process, no alias', { timeout: 60_000 }, async () => {
    await labCmd('shape', 'lab-h1', '--rate', '100mbit', '--delay', '10ms');
    await labCmd('shape', 'lab-h2', '--delay', '5ms', '--loss', '1%');
    // A connection through the proxy that is still open when the lab goes down.
    const echo = openEcho('lab-h1');
    await echo.roundTrips(1);
    const proxies = await proxyProcesses();
    expect(proxies).toHaveLength(1);

    await labCmd('down');
    await echo.close();
    expect(await proxyProcesses()).toEqual([]);
    expect(existsSync(`/proc/${proxies[0]}`)).toBe(false);
    expect(await proxyApiAnswers()).toBe(false);
    expect(await ok('tc', ['qdisc', 'show'])).not.toMatch(/\btbf\b/);
    expect(await ok('ip', ['-o', 'link', 'show'])).not.toMatch(/veth-lab-h|lab-br0/);
    expect(await ok('ip', ['netns', 'list'])).not.toMatch(/\blab-h\d/);
    expect(existsSync(sshConf)).toBe(false);
    expect(await labCmd('status')).toBe('no lab hosts');
  });
});
