// Sessions through a ProxyCommand and through ProxyJump hosts, against lab hosts' real sshd:
// the final host's key is still pinned, every wait still bounded, and no proxy outlives its session.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp } from '../helpers/lab.ts';
import { resolveSshTarget, type SshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { childrenMatching, groupMembers, labKnownHosts, labLogin, labSshConfig, leftoversOf, rejection, waitFor, writeSshConfig } from './lab-ssh.ts';

const h1 = '10.231.0.11';

describe('ssh sessions through proxies', () => {
  let dir = '';
  let config = '';
  let record = '';
  const resolve = (alias: string): Promise<SshTarget> => resolveSshTarget(alias, { configFile: config, signal: AbortSignal.timeout(10_000) });
  // The pids the relay recorded, one per run, with the arguments it got.
  const relayRuns = async (): Promise<{ pid: number; args: string }[]> =>
    (await readFile(record, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => ({ pid: Number(line.split(' ')[0]), args: line.split(' ').slice(1).join(' ') }));

  beforeAll(async () => {
    await labUp(2);
    dir = await mkdtemp(join(tmpdir(), 'ssh-proxy-test-'));
    record = join(dir, 'relay-runs');
    // A netcat made of bash: records its pid and arguments, then relays stdin and stdout to host:port.
    const relay = join(dir, 'relay');
    await writeFile(
      relay,
      [
        '#!/bin/bash',
        `printf '%s %s\\n' "$$" "$*" >>${JSON.stringify(record)}`,
        'exec 3<>"/dev/tcp/$1/$2" || exit 1',
        'cat <&3 &',
        'exec cat >&3',
        '',
      ].join('\n'),
    );
    await chmod(relay, 0o755);
    config = await writeSshConfig(
      join(dir, 'config'),
      {
        // A bastion of our own: the ssh that makes the hop must read this file to find it.
        bastion: { HostName: h1, ...labLogin, IdentitiesOnly: 'yes' },
        'via-command': { HostName: h1, ...labLogin, ProxyCommand: `${relay} %h %p %r %n 100%%` },
        'via-command-refused': { HostName: h1, Port: '2', ...labLogin, ProxyCommand: `${relay} %h %p` },
        'via-command-silent': { HostName: h1, ...labLogin, ProxyCommand: `/bin/sh -c 'echo $$ >>${record}-silent; exec sleep 600'` },
        // lab-h1's own sshd, on lab-h1's loopback: only reachable from lab-h1 itself.
        'via-jump': { HostName: '127.0.0.1', HostKeyAlias: 'lab-h1', ...labLogin, ProxyJump: 'bastion' },
        'via-two-jumps': { HostName: '127.0.0.1', HostKeyAlias: 'lab-h1', ...labLogin, ProxyJump: 'bastion,inner' },
        inner: { HostName: '127.0.0.1', HostKeyAlias: 'lab-h1', ...labLogin },
        'via-jump-refused': { HostName: '127.0.0.1', Port: '2', HostKeyAlias: 'lab-h1', ...labLogin, ProxyJump: 'bastion' },
      },
      [`Include ${labSshConfig}`],
    );
  }, 1_200_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    await labDown();
  }, 120_000);

  it('reaches lab-h1 through a ProxyCommand, with its tokens expanded, and leaves no process of it after close', { timeout: 30_000 }, async () => {
    const target = await resolve('via-command');
    expect(target.proxyCommand).toBe(`${join(dir, 'relay')} %h %p %r %n 100%%`);
    const session = await openSsh(target, { signal: AbortSignal.timeout(20_000) });
    expect((await session.run('hostname')).stdout).toBe('lab-h1\n');
    const runs = await relayRuns();
    expect(runs).toEqual([{ pid: expect.any(Number), args: `${h1} 22 root via-command 100%` }]);
    const { pid } = runs[0]!;
    // The relay and the cat it left in the background.
    expect((await groupMembers(pid)).length).toBe(2);
    await session.close();
    expect(await leftoversOf(pid)).toEqual([]);
  });

  it('names the host and the ProxyCommand exit status and stderr when the proxy cannot connect, and leaves no process', { timeout: 30_000 }, async () => {
    const before = (await relayRuns()).length;
    const error = await rejection(openSsh(await resolve('via-command-refused'), { signal: AbortSignal.timeout(20_000) }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toMatch(/^ssh via-command-refused \(10\.231\.0\.11:2 through ProxyCommand\): the ProxyCommand exited 1: .*Connection refused/);
    const runs = await relayRuns();
    expect(runs.length).toBe(before + 1);
    expect(await leftoversOf(runs.at(-1)!.pid)).toEqual([]);
  });

  it('gives up on a ProxyCommand that never speaks SSH after readyTimeoutMs, and kills it', { timeout: 30_000 }, async () => {
    const started = Date.now();
    const error = await rejection(openSsh(await resolve('via-command-silent'), { readyTimeoutMs: 1_000 }), 10_000);
    expect(error).toMatchObject({ code: 'E_SSH', message: 'ssh via-command-silent (10.231.0.11:22 through ProxyCommand): timed out after 1 s' });
    expect(Date.now() - started).toBeLessThan(5_000);
    const pid = Number((await readFile(`${record}-silent`, 'utf8')).trim().split('\n').at(-1));
    expect(pid).toBeGreaterThan(0);
    expect(await leftoversOf(pid)).toEqual([]);
  });

  it('rejects with the abort reason while a ProxyCommand is connecting, and kills it', { timeout: 30_000 }, async () => {
    const reason = new Error('gave up');
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 300);
    expect(await rejection(openSsh(await resolve('via-command-silent'), { signal: controller.signal }), 5_000)).toBe(reason);
    const pid = Number((await readFile(`${record}-silent`, 'utf8')).trim().split('\n').at(-1));
    expect(await leftoversOf(pid)).toEqual([]);
  });

  it("reaches lab-h1's own sshd on its loopback through ProxyJump, pinned to lab-h1's host key through HostKeyAlias", { timeout: 30_000 }, async () => {
    const target = await resolve('via-jump');
    expect(target).toMatchObject({ hostname: '127.0.0.1', port: 22, hostKeyAlias: 'lab-h1', proxyJump: [{ spec: 'bastion', host: 'bastion' }], configFile: config });
    const session = await openSsh(target, { signal: AbortSignal.timeout(20_000) });
    expect((await session.run('hostname')).stdout).toBe('lab-h1\n');
    // The connection arrived at lab-h1's sshd from lab-h1's loopback.
    expect((await session.run('echo $SSH_CONNECTION')).stdout).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 22\n$/);
    const proxies = await childrenMatching('-W [127.0.0.1]:22 bastion');
    expect([...proxies.values()]).toEqual([`ssh -F ${config} -W [127.0.0.1]:22 bastion`]);
    await session.close();
    for (const pid of proxies.keys()) expect(await leftoversOf(pid)).toEqual([]);
  });

  it('refuses the host behind the jump when its key is not the one pinned for the alias', { timeout: 30_000 }, async () => {
    const target = await resolve('via-jump');
    const pinned = await readFile(labKnownHosts, 'utf8');
    const h2Key = pinned.split('\n').find((line) => line.startsWith('10.231.0.12,'))!.split(' ').slice(1, 3).join(' ');
    const wrong = join(dir, 'wrong_known_hosts');
    await writeFile(wrong, `lab-h1 ${h2Key}\n`);
    const error = await rejection(openSsh({ ...target, userKnownHostsFiles: [wrong] }, { signal: AbortSignal.timeout(20_000) }));
    expect(error.message).toMatch(/^ssh via-jump \(127\.0\.0\.1:22 through ProxyJump bastion\): host key for lab-h1 has CHANGED/);
    // And without the jump, 127.0.0.1 is this machine, where no lab-h1 answers.
    expect(await rejection(openSsh({ ...target, proxyJump: undefined }, { signal: AbortSignal.timeout(20_000) }))).toMatchObject({
      code: 'E_SSH',
      message: expect.stringMatching(/^ssh via-jump \(127\.0\.0\.1:22\): (connection refused|host key for lab-h1 has CHANGED)/),
    });
    await waitFor('no ssh -W left', async () => (await childrenMatching('-W [127.0.0.1]:22')).size === 0);
  });

  it('chains two ProxyJump hops as ssh -J does', { timeout: 30_000 }, async () => {
    const session = await openSsh(await resolve('via-two-jumps'), { signal: AbortSignal.timeout(20_000) });
    const proxies = await childrenMatching('-W [127.0.0.1]:22');
    expect([...proxies.values()]).toEqual([`ssh -J bastion -F ${config} -W [127.0.0.1]:22 inner`]);
    expect((await session.run('hostname')).stdout).toBe('lab-h1\n');
    await session.close();
    for (const pid of proxies.keys()) expect(await leftoversOf(pid)).toEqual([]);
  });

  it('names the host and the jump when the last hop cannot reach it, and leaves no ssh behind', { timeout: 30_000 }, async () => {
    const error = await rejection(openSsh(await resolve('via-jump-refused'), { signal: AbortSignal.timeout(20_000) }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toMatch(/^ssh via-jump-refused \(127\.0\.0\.1:2 through ProxyJump bastion\): the ssh -W through ProxyJump bastion exited 255: .*Connection refused/);
    expect((await childrenMatching('-W [127.0.0.1]:2 ')).size).toBe(0);
  });

  it('settles closed with an error naming the proxy when the proxy dies mid-session', { timeout: 30_000 }, async () => {
    const session = await openSsh(await resolve('via-jump'), { signal: AbortSignal.timeout(20_000) });
    const [pid] = [...(await childrenMatching('-W [127.0.0.1]:22 bastion')).keys()];
    process.kill(pid!, 'SIGKILL');
    const lost = await Promise.race([session.closed, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
    expect(lost).toMatchObject({
      code: 'E_SSH',
      message: 'ssh via-jump (127.0.0.1:22 through ProxyJump bastion): connection lost: the ssh -W through ProxyJump bastion was killed by SIGKILL (nothing on stderr)',
    });
    await session.close();
  });
});
