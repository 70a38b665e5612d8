// Which keys a session offers, against a lab host's real sshd and a real ssh-agent:
// IdentitiesOnly, IdentityAgent, and agent keys that stand in for passphrase-protected files.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labUp } from '../helpers/lab.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { fingerprintOf, labKey, labLogin, makeKey, oneShotSshd, rejection, startAgent, writeSshConfig, type Agent } from './lab-ssh.ts';

const PORT = 2222;

describe('keys offered to a lab host', () => {
  let dir = '';
  let config = '';
  let unrelated: string[] = [];
  let unrelatedFingerprints: string[] = [];
  let labFingerprint = '';
  let lockedLabKey = '';
  const agents: Agent[] = [];

  // An agent on a socket of its own holding `keys`, stopped after all tests.
  const agentWith = async (name: string, keys: string[]): Promise<Agent> => {
    const agent = await startAgent(join(dir, `${name}.sock`), keys);
    agents.push(agent);
    return agent;
  };
  // An alias on the one-shot sshd of lab-h1, its pinned key found through HostKeyAlias.
  const alias = (options: Record<string, string>): Record<string, string> => ({
    HostName: '10.231.0.11',
    Port: String(PORT),
    HostKeyAlias: 'lab-h1',
    ...labLogin,
    ...options,
  });
  // Log in as `name` of the config, run hostname, and hand back what sshd logged.
  const loginLog = async (name: string): Promise<{ hostname: string; log: string }> => {
    const sshd = await oneShotSshd('lab-h1', PORT);
    try {
      const session = await openSsh(await resolveSshTarget(name, { configFile: config }), { signal: AbortSignal.timeout(20_000) });
      const { stdout } = await session.run('hostname');
      await session.close();
      return { hostname: stdout.trim(), log: await sshd.done() };
    } finally {
      await sshd.done(1_000);
    }
  };

  beforeAll(async () => {
    await labUp(1);
    dir = await mkdtemp(join(tmpdir(), 'ssh-identities-test-'));
    unrelated = [1, 2, 3, 4, 5, 6].map((i) => join(dir, `unrelated-${i}`));
    unrelatedFingerprints = await Promise.all(unrelated.map((key, i) => makeKey(key, `unrelated-${i + 1}`)));
    labFingerprint = await fingerprintOf(`${labKey}.pub`);
    // The lab key under a passphrase, and no .pub beside it: its public half is in its header.
    lockedLabKey = join(dir, 'locked-lab-key');
    await copyFile(labKey, lockedLabKey);
    await execa('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'secret', '-f', lockedLabKey], { timeout: 10_000, stdin: 'ignore' });
  }, 1_200_000);

  afterAll(async () => {
    await Promise.allSettled(agents.map((agent) => agent.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
    await labDown();
  }, 120_000);

  it('logs in with IdentitiesOnly and the lab key while the agent holds six other keys, and never offers them', { timeout: 60_000 }, async () => {
    const agent = await agentWith('six', unrelated);
    config = await writeSshConfig(join(dir, 'only.config'), { only: alias({ IdentitiesOnly: 'yes', IdentityAgent: agent.socket }) });
    const target = await resolveSshTarget('only', { configFile: config });
    expect(target).toMatchObject({ identitiesOnly: true, identityAgent: agent.socket, identityFiles: [labKey], port: PORT, hostKeyAlias: 'lab-h1' });

    const { hostname, log } = await loginLog('only');
    expect(hostname).toBe('lab-h1');
    expect(log).toContain(`Accepted publickey for root from 10.231.0.1`);
    expect(log).toContain(labFingerprint);
    for (const offered of unrelatedFingerprints) expect(log).not.toContain(offered);
  });

  it('offers the agent keys first without IdentitiesOnly, as OpenSSH does, and says so when sshd gives up after six', { timeout: 60_000 }, async () => {
    const agent = await agentWith('six-again', unrelated);
    config = await writeSshConfig(join(dir, 'all.config'), { all: alias({ IdentitiesOnly: 'no', IdentityAgent: agent.socket }) });
    const sshd = await oneShotSshd('lab-h1', PORT);
    const error = await rejection(openSsh(await resolveSshTarget('all', { configFile: config }), { signal: AbortSignal.timeout(20_000) }));
    const log = await sshd.done();
    expect(error).toMatchObject({ code: 'E_SSH' });
    const tried = unrelated.map((_, i) => `agent key unrelated-${i + 1}`).join(', ');
    expect(error.message).toBe(
      `ssh all (10.231.0.11:${PORT}): the host ended the login: Too many authentication failures (tried: ${tried}; ` +
        `the host allows only so many keys (sshd's MaxAuthTries): set IdentitiesOnly yes for it, so that only its IdentityFile keys are offered)`,
    );
    // The same log that shows no agent key above shows each one here.
    const refused = log.split('\n').filter((line) => line.startsWith('Failed publickey for root from 10.231.0.1'));
    expect(refused.map((line) => line.trim().split(' ').at(-1))).toEqual(unrelatedFingerprints);
    expect(log).toContain('Too many authentication failures');
    expect(log).not.toContain(labFingerprint);
  });

  it('signs with the agent copy of a passphrase-protected IdentityFile key, and still offers no other agent key', { timeout: 60_000 }, async () => {
    const agent = await agentWith('seven', [...unrelated, labKey]);
    config = await writeSshConfig(join(dir, 'locked.config'), {
      locked: alias({ IdentitiesOnly: 'yes', IdentityAgent: agent.socket, IdentityFile: lockedLabKey }),
    });
    const { hostname, log } = await loginLog('locked');
    expect(hostname).toBe('lab-h1');
    expect(log).toContain(labFingerprint);
    for (const offered of unrelatedFingerprints) expect(log).not.toContain(offered);
  });

  it('skips a passphrase-protected IdentityFile the agent does not hold, and offers nothing else under IdentitiesOnly', { timeout: 30_000 }, async () => {
    const agent = await agentWith('six-more', unrelated);
    config = await writeSshConfig(join(dir, 'nothing.config'), {
      nothing: alias({ Port: '22', IdentitiesOnly: 'yes', IdentityAgent: agent.socket, IdentityFile: lockedLabKey }),
    });
    const error = await rejection(openSsh(await resolveSshTarget('nothing', { configFile: config }), { signal: AbortSignal.timeout(20_000) }));
    expect(error).toMatchObject({ code: 'E_SSH', message: `ssh nothing (10.231.0.11:22): no key was accepted (tried: nothing; skipped: ${lockedLabKey} (needs a passphrase))` });
  });

  it('uses no agent at all with IdentityAgent none, whatever SSH_AUTH_SOCK says', { timeout: 30_000 }, async () => {
    const agent = await agentWith('lab-only', [labKey]);
    config = await writeSshConfig(join(dir, 'none.config'), { none: alias({ Port: '22', IdentityAgent: 'none', IdentityFile: lockedLabKey }) });
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = agent.socket;
    try {
      const target = await resolveSshTarget('none', { configFile: config });
      expect(target.identityAgent).toBe('none');
      const error = await rejection(openSsh(target, { signal: AbortSignal.timeout(20_000) }));
      expect(error.message).toBe(`ssh none (10.231.0.11:22): no key was accepted (tried: nothing; skipped: ${lockedLabKey} (needs a passphrase))`);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });
});
