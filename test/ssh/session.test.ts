// SSH sessions against real lab hosts: alias resolution through ssh -G, pinned host keys,
// key authentication, commands, reverse forwards, aborts and lost connections.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options, type Result } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseLab, takeLab } from '../helpers/lab.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { resolveSshTarget, type SshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh, type SshSession } from '../../helpers/ssh/session.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const lab = join(root, 'scripts/lab');
const labKey = '/var/lib/remote-runner-lab/id_ed25519';
const labKnownHosts = '/var/lib/remote-runner-lab/known_hosts';
const h1 = '10.231.0.11';

// Run a command to completion, bounded in time; never throws for a non-zero exit.
async function run(file: string, args: string[], options: Options = {}, ms = 40_000): Promise<Result> {
  return await execa(file, args, { reject: false, stdin: 'ignore', timeout: ms, ...options });
}

// Run scripts/lab; its failure fails the test with its output.
async function labCmd(...args: string[]): Promise<void> {
  const result = await run(lab, args);
  if (result.exitCode !== 0) throw new Error(`scripts/lab ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr)}`);
}

// The error a promise rejects with, or a failure if it resolves; bounded by `ms`.
async function rejection(promise: Promise<unknown>, ms = 20_000): Promise<Error> {
  const timer = AbortSignal.timeout(ms);
  const outcome = await Promise.race([
    promise.then(
      () => new Error('resolved instead of rejecting'),
      (error: unknown) => ({ error }),
    ),
    new Promise<Error>((resolve) => timer.addEventListener('abort', () => resolve(new Error(`still pending after ${ms} ms`)))),
  ]);
  if (outcome instanceof Error) throw outcome;
  return outcome.error as Error;
}

// A promise's value within `ms`, or a failure naming what was awaited.
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// A local TCP server on 127.0.0.1 that echoes (or, when silent, accepts and never answers).
async function tcpServer(mode: 'echo' | 'silent'): Promise<{ port: number; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (mode === 'echo') socket.pipe(socket);
    else socket.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Connect from the remote to 127.0.0.1:port (or addr:port), send "hi" and print what comes back.
const probe = (port: number, addr = '127.0.0.1'): string =>
  `timeout 5 bash -c 'exec 3<>/dev/tcp/${addr}/${port} || exit 7; echo hi >&3; head -c 3 <&3'`;

describe('ssh sessions to lab hosts', () => {
  let target: SshTarget;
  let dir = '';
  const sessions: SshSession[] = [];
  const open = async (t: SshTarget, options: Parameters<typeof openSsh>[1] = {}): Promise<SshSession> => {
    const session = await openSsh(t, { signal: AbortSignal.timeout(20_000), ...options });
    sessions.push(session);
    return session;
  };

  beforeAll(async () => {
    await takeLab();
    try {
      await labCmd('up', '2');
    } catch (error) {
      await run(lab, ['down']);
      throw error;
    }
    dir = await mkdtemp(join(tmpdir(), 'ssh-session-test-'));
    target = await resolveSshTarget('lab-h1', { signal: AbortSignal.timeout(10_000) });
  }, 600_000);

  afterAll(async () => {
    await Promise.allSettled(sessions.map((s) => within(5_000, 'close', s.close())));
    if (dir) await rm(dir, { recursive: true, force: true });
    await run(lab, ['down']);
    await releaseLab();
  }, 90_000);

  it('resolves lab-h1 through ssh -G in an environment with no HOME and no SSH_AUTH_SOCK, and logs in from there', { timeout: 30_000 }, async () => {
    const script = join(dir, 'bare.mts');
    await writeFile(
      script,
      [
        `import { resolveSshTarget } from ${JSON.stringify(join(root, 'helpers/ssh/ssh-config.ts'))};`,
        `import { openSsh } from ${JSON.stringify(join(root, 'helpers/ssh/session.ts'))};`,
        `const target = await resolveSshTarget('lab-h1', { signal: AbortSignal.timeout(10_000) });`,
        `const session = await openSsh(target, { signal: AbortSignal.timeout(10_000) });`,
        `const { stdout } = await session.run('hostname');`,
        `await session.close();`,
        `process.stdout.write(JSON.stringify({ target, hostname: stdout.trim(), env: Object.keys(process.env).sort() }));`,
      ].join('\n'),
    );
    const result = await run(process.execPath, ['--import', 'tsx', script], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      extendEnv: false,
    }, 25_000);
    expect(result.exitCode, String(result.stderr)).toBe(0);
    const out = JSON.parse(String(result.stdout)) as { target: SshTarget; hostname: string; env: string[] };
    expect(out.env).not.toContain('HOME');
    expect(out.env).not.toContain('SSH_AUTH_SOCK');
    expect(out.target).toMatchObject({
      alias: 'lab-h1',
      hostname: h1,
      port: 22,
      user: 'root',
      identityFiles: [labKey],
      identitiesOnly: true,
      userKnownHostsFiles: [labKnownHosts],
      globalKnownHostsFiles: ['/dev/null'],
      strictHostKeyChecking: 'true',
      connectTimeoutMs: 5_000,
    });
    // BatchMode's implicit ServerAliveInterval 300 is not taken for a setting.
    expect(out.target.serverAliveIntervalMs).toBeUndefined();
    expect(out.hostname).toBe('lab-h1');
  });

  it.each(['-oProxyCommand=touch /tmp/pwned', 'lab h1', 'lab-h1;id', '', 'lab-h1\n'])(
    'refuses the host alias %j before running anything',
    async (alias) => {
      const error = await rejection(resolveSshTarget(alias));
      expect(error).toBeInstanceOf(TgError);
      expect(error).toMatchObject({ code: 'E_SSH', message: expect.stringContaining(JSON.stringify(alias)) });
    },
  );

  it('runs a command with stdin and reports its output, exit code and signal', { timeout: 20_000 }, async () => {
    const session = await open(target);
    expect(await session.run('hostname')).toEqual({ code: 0, signal: null, stdout: 'lab-h1\n', stderr: '' });
    expect(await session.run('cat; echo oops >&2; exit 3', { stdin: 'from stdin\n' })).toEqual({
      code: 3,
      signal: null,
      stdout: 'from stdin\n',
      stderr: 'oops\n',
    });
    expect(await session.run('kill -TERM $$')).toMatchObject({ code: null, signal: 'SIGTERM' });
    const big = await session.run('head -c 100000 /dev/zero', { maxOutputBytes: 1000 });
    expect(big.stdout.startsWith('\0'.repeat(1000))).toBe(true);
    expect(big.stdout).toMatch(/\[99000 more bytes not kept\]$/);
  });

  it('closes a command when its signal aborts, and the session goes on', { timeout: 20_000 }, async () => {
    const session = await open(target);
    const controller = new AbortController();
    const reason = new Error('enough');
    const started = Date.now();
    setTimeout(() => controller.abort(reason), 300);
    expect(await rejection(session.run('sleep 30', { signal: controller.signal }), 5_000)).toBe(reason);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await session.run('echo still here')).stdout).toBe('still here\n');
  });

  it('streams an exec channel and closes it when its signal aborts', { timeout: 20_000 }, async () => {
    const session = await open(target);
    const controller = new AbortController();
    // cat ends on the EOF the abort sends: a root login gets no signals from sshd.
    const channel = await session.exec('echo ready; exec cat', { signal: controller.signal });
    const closed = once(channel, 'close');
    const [chunk] = (await within(5_000, 'the first output', once(channel, 'data'))) as [Buffer];
    expect(chunk.toString()).toBe('ready\n');
    controller.abort(new Error('done reading'));
    await within(2_000, 'the channel closing', closed);
  });

  it('logs in through the agent when SSH_AUTH_SOCK is set, and goes on to the identity files when the agent cannot be reached', { timeout: 30_000 }, async () => {
    const socket = join(dir, 'agent.sock');
    const missing = join(dir, 'no-agent.sock');
    const agent = execa('ssh-agent', ['-D', '-a', socket], { reject: false, stdin: 'ignore', timeout: 25_000 });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      await within(5_000, 'ssh-agent listening', (async () => {
        while ((await run('test', ['-S', socket])).exitCode !== 0) await new Promise((r) => setTimeout(r, 50));
      })());
      await execa('ssh-add', ['-q', labKey], { env: { SSH_AUTH_SOCK: socket }, stdin: 'ignore', timeout: 10_000 });

      // lab-h1's alias sets IdentitiesOnly: only without it are agent keys offered on their own.
      process.env.SSH_AUTH_SOCK = socket;
      const viaAgent = await open({ ...target, identityFiles: [], identitiesOnly: false });
      expect((await viaAgent.run('hostname')).stdout).toBe('lab-h1\n');

      process.env.SSH_AUTH_SOCK = missing;
      const viaFile = await open(target);
      expect((await viaFile.run('hostname')).stdout).toBe('lab-h1\n');
      const error = await rejection(openSsh({ ...target, identityFiles: [], identitiesOnly: false }));
      expect(error.message).toBe(`ssh lab-h1 (10.231.0.11:22): no key was accepted (tried: nothing; the agent at ${missing} cannot be used: ENOENT)`);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent.kill('SIGTERM');
      await agent;
    }
  });

  it('refuses a changed host key with the CHANGED message naming the known_hosts file', { timeout: 20_000 }, async () => {
    const pinned = await readFile(labKnownHosts, 'utf8');
    const h2Key = pinned.split('\n').find((line) => line.startsWith('10.231.0.12,'))!.split(' ').slice(1, 3).join(' ');
    const file = join(dir, 'changed_known_hosts');
    await writeFile(file, pinned.split('\n').map((line) => (line.startsWith(`${h1},`) ? `${h1},lab-h1 ${h2Key}` : line)).join('\n'));
    const error = await rejection(openSsh({ ...target, userKnownHostsFiles: [file], globalKnownHostsFiles: [] }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toMatch(
      new RegExp(`^ssh lab-h1 \\(10\\.231\\.0\\.11:22\\): host key for 10\\.231\\.0\\.11 has CHANGED \\(fingerprint SHA256:[A-Za-z0-9+/]{43}\\) — refusing to connect; fix ${file} \\(line 1\\)`),
    );
    expect(error.message).toMatch(/never accepted .* whatever StrictHostKeyChecking says/);
  });

  it('refuses an unknown host key even when StrictHostKeyChecking is off', { timeout: 20_000 }, async () => {
    const file = join(dir, 'empty_known_hosts');
    await writeFile(file, '');
    const error = await rejection(openSsh({ ...target, userKnownHostsFiles: [file], globalKnownHostsFiles: [], strictHostKeyChecking: 'false' }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toContain(`ssh lab-h1 (${h1}:22): host key is not in ${file} — refusing (add it with ssh-keyscan after checking it;`);
    expect(error.message).toMatch(/presented ssh-ed25519 SHA256:\S+; keys are never accepted on first use .* \(it is 'false'\)/);
  });

  it('says which keys it tried, and which it skipped, when no key is accepted', { timeout: 20_000 }, async () => {
    const fresh = join(dir, 'fresh');
    const locked = join(dir, 'locked');
    const garbage = join(dir, 'garbage');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', fresh], { timeout: 10_000 });
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked], { timeout: 10_000 });
    await writeFile(garbage, 'not a key\n');
    const error = await rejection(openSsh({ ...target, identityFiles: [locked, fresh, garbage] }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toMatch(
      new RegExp(`^ssh lab-h1 \\(10\\.231\\.0\\.11:22\\): no key was accepted \\(tried: ${fresh}; skipped: ${locked} \\(needs a passphrase\\), ${garbage} \\(cannot be parsed\\)`),
    );
  });

  it('reports a refused connection quickly, naming the alias and address', { timeout: 40_000 }, async () => {
    const h2 = await resolveSshTarget('lab-h2');
    await labCmd('stop-sshd', 'lab-h2');
    try {
      const started = Date.now();
      const error = await rejection(openSsh(h2), 5_000);
      expect(error).toMatchObject({ code: 'E_SSH', message: 'ssh lab-h2 (10.231.0.12:22): connection refused' });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await labCmd('start-sshd', 'lab-h2');
    }
  });

  it('forwards a dynamic port on the remote loopback to a local TCP service, unreachable from other hosts', { timeout: 30_000 }, async () => {
    const echo = await tcpServer('echo');
    try {
      const session = await open(target);
      const forward = await session.forwardIn('127.0.0.1', { host: '127.0.0.1', port: echo.port });
      expect(forward.port).toBeGreaterThan(0);
      expect(await session.run(probe(forward.port))).toMatchObject({ code: 0, stdout: 'hi\n' });
      // Several connections, one after another and at once.
      const many = await session.run(`for i in 1 2 3; do ${probe(forward.port)} & done; wait`);
      expect(many.stdout).toBe('hi\nhi\nhi\n');

      // Bound to 127.0.0.1 only: lab-h2 cannot reach it at lab-h1's address.
      const h2 = await open(await resolveSshTarget('lab-h2'));
      const fromH2 = await h2.run(probe(forward.port, h1));
      expect(fromH2.code).toBe(7);
      expect(fromH2.stderr).toMatch(/Connection refused/);

      // A second forward on the same session gets a port of its own.
      const second = await session.forwardIn('127.0.0.1', { host: '127.0.0.1', port: echo.port });
      expect(second.port).not.toBe(forward.port);
      expect(await session.run(probe(second.port))).toMatchObject({ code: 0, stdout: 'hi\n' });

      // Closing one forward leaves the other working, and drops its open connections.
      const held = session.run(`timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${forward.port}; echo opened; cat <&3; echo eof'`);
      await within(5_000, 'the held connection reaching the echo server', (async () => {
        while (echo.sockets.size === 0) await new Promise((r) => setTimeout(r, 50));
      })());
      await within(5_000, 'forward.close()', forward.close());
      await forward.close();
      expect(await within(5_000, 'the held connection ending', held)).toMatchObject({ code: 0, stdout: 'opened\neof\n' });
      // The local end closes a moment after the remote one: wait for it, bounded.
      for (let i = 0; i < 50 && echo.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(echo.sockets.size).toBe(0);
      expect((await session.run(probe(forward.port))).code).toBe(7);
      expect(await session.run(probe(second.port))).toMatchObject({ code: 0, stdout: 'hi\n' });
      await second.close();
    } finally {
      await echo.close();
    }
  });

  it('rejects with the abort reason when the signal aborts during connect, and leaves no connection open', { timeout: 20_000 }, async () => {
    const silent = await tcpServer('silent');
    try {
      const quiet: SshTarget = { ...target, hostname: '127.0.0.1', port: silent.port };
      const before = new Error('aborted before');
      expect(await rejection(openSsh(quiet, { signal: AbortSignal.abort(before) }), 1_000)).toBe(before);

      const controller = new AbortController();
      const reason = new Error('gave up');
      setTimeout(() => controller.abort(reason), 300);
      const started = Date.now();
      expect(await rejection(openSsh(quiet, { signal: controller.signal }), 5_000)).toBe(reason);
      expect(Date.now() - started).toBeLessThan(2_000);
      await within(2_000, 'the client socket closing', (async () => {
        while (silent.sockets.size > 0) await new Promise((r) => setTimeout(r, 20));
      })());
    } finally {
      await silent.close();
    }
  });

  it('gives up a handshake that never comes after readyTimeoutMs', { timeout: 20_000 }, async () => {
    const silent = await tcpServer('silent');
    try {
      const error = await rejection(openSsh({ ...target, hostname: '127.0.0.1', port: silent.port }, { readyTimeoutMs: 500 }), 5_000);
      expect(error).toMatchObject({ code: 'E_SSH', message: `ssh lab-h1 (127.0.0.1:${silent.port}): timed out after 0.5 s` });
    } finally {
      await silent.close();
    }
  });

  it('settles closed with an error and rejects pending commands when sshd goes away', { timeout: 40_000 }, async () => {
    const session = await open(await resolveSshTarget('lab-h2'));
    const pending = rejection(session.run('sleep 60'), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    try {
      await labCmd('stop-sshd', 'lab-h2');
      const lost = await within(10_000, 'closed', session.closed);
      expect(lost).toBeInstanceOf(TgError);
      expect(lost).toMatchObject({ code: 'E_SSH', message: expect.stringMatching(/^ssh lab-h2 \(10\.231\.0\.12:22\): connection lost: /) });
      expect(await pending).toBe(lost);
      expect(await rejection(session.run('true'), 1_000)).toBe(lost);
      await within(1_000, 'close after loss', session.close());
    } finally {
      await labCmd('start-sshd', 'lab-h2');
    }
  });

  it('settles closed after close() without an error, and close() is idempotent', { timeout: 20_000 }, async () => {
    const session = await open(target);
    await Promise.all([session.close(), session.close()]);
    expect(await session.closed).toBeUndefined();
    expect(await rejection(session.run('true'), 1_000)).toMatchObject({ code: 'E_SSH', message: expect.stringContaining('lab-h1') });
  });

  it('notices a host cut off the network through keepalives, within 20 s', { timeout: 60_000 }, async () => {
    const session = await open(target);
    expect(session.target.serverAliveIntervalMs).toBeUndefined();
    const pending = rejection(session.run('sleep 120'), 40_000);
    await labCmd('cut', 'lab-h1');
    try {
      const started = Date.now();
      const lost = await within(20_000, 'closed after the cut', session.closed);
      expect(Date.now() - started).toBeGreaterThan(6_000);
      expect(lost).toMatchObject({
        code: 'E_SSH',
        message: 'ssh lab-h1 (10.231.0.11:22): connection lost: no answer to 3 keepalives sent every 3 s',
      });
      expect(await within(1_000, 'the pending command', pending)).toBe(lost);
    } finally {
      await labCmd('heal', 'lab-h1');
    }
    const again = await open(target);
    expect((await again.run('hostname')).stdout).toBe('lab-h1\n');
  });
});
