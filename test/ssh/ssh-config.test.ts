// What `ssh -G` reports that changes how to connect, read from temp ssh_config files by the
// real ssh: proxies, IdentitiesOnly, IdentityAgent, tokens, and what is refused.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { proxyCommandLine, proxyJumpArgs } from '../../helpers/ssh/transport.ts';
import { rejection, writeSshConfig } from './lab-ssh.ts';

describe('resolving an alias with ssh -G', () => {
  let dir = '';
  let config = '';
  let key = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssh-config-test-'));
    key = join(dir, 'key-root-10.0.0.7');
    await writeFile(key, '');
    config = await writeSshConfig(join(dir, 'config'), {
      jumps: { HostName: '10.0.0.7', ProxyJump: 'first,u@second:2200,admin@[fe80::1]:23' },
      command: { HostName: '10.0.0.7', User: 'deploy', Port: '2022', ProxyCommand: 'relay %h %p %r %n 100%%' },
      fdpass: { ProxyCommand: 'relay %h %p', ProxyUseFdpass: 'yes' },
      loop: { ProxyJump: 'loop' },
      only: { HostName: '10.0.0.7', User: 'root', IdentitiesOnly: 'yes', IdentityFile: join(dir, 'key-%r-%h'), IdentityAgent: 'none', AddressFamily: 'inet', ServerAliveInterval: '4', ServerAliveCountMax: '5' },
      'env-file': { IdentityFile: '${REMOTE_RUNNER_TEST_DIR}/key-root-10.0.0.7', HostName: '10.0.0.7', User: 'root', IdentityAgent: '$REMOTE_RUNNER_TEST_AGENT' },
      'bad-token': { IdentityFile: '~/.ssh/id_%Z' },
      plain: { HostName: '10.0.0.7' },
    });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads ProxyJump hops, users, ports and bracketed addresses, and builds the ssh -W command OpenSSH builds', async () => {
    const target = await resolveSshTarget('jumps', { configFile: config });
    expect(target.proxyJump).toEqual([
      { spec: 'first', host: 'first' },
      { spec: 'u@second:2200', host: 'second', user: 'u', port: 2200 },
      { spec: 'admin@[fe80::1]:23', host: 'fe80::1', user: 'admin', port: 23 },
    ]);
    expect(target.configFile).toBe(config);
    expect(proxyJumpArgs(target, target.proxyJump!)).toEqual(['-l', 'admin', '-p', '23', '-J', 'first,u@second:2200', '-F', config, '-W', '[10.0.0.7]:22', 'fe80::1']);
  });

  it('keeps the ProxyCommand tokens for when it runs, and expands them as ssh does', async () => {
    const target = await resolveSshTarget('command', { configFile: config });
    expect(target.proxyCommand).toBe('relay %h %p %r %n 100%%');
    expect(proxyCommandLine(target, target.proxyCommand!)).toBe('relay 10.0.0.7 2022 deploy command 100%');
    expect(() => proxyCommandLine(target, 'relay %d')).toThrow('ssh command: ProxyCommand relay %d: the token %d is not one ssh expands here (it expands %h %p %r %n %%)');
  });

  it('honours IdentitiesOnly, IdentityAgent none, AddressFamily and the keepalive settings, and expands IdentityFile tokens', async () => {
    const target = await resolveSshTarget('only', { configFile: config });
    expect(target).toMatchObject({
      identitiesOnly: true,
      identityAgent: 'none',
      identityFiles: [key],
      addressFamily: 'inet',
      serverAliveIntervalMs: 4_000,
      serverAliveCountMax: 5,
    });
    expect(target.proxyCommand).toBeUndefined();
    expect(target.proxyJump).toBeUndefined();
  });

  it('expands ${VAR} in IdentityFile and reads IdentityAgent $VAR from the environment', async () => {
    process.env.REMOTE_RUNNER_TEST_DIR = dir;
    process.env.REMOTE_RUNNER_TEST_AGENT = join(dir, 'agent.sock');
    try {
      const target = await resolveSshTarget('env-file', { configFile: config });
      expect(target).toMatchObject({ identityFiles: [key], identityAgent: join(dir, 'agent.sock') });
      expect((await resolveSshTarget('plain', { configFile: config })).identityAgent).toBeUndefined();
    } finally {
      delete process.env.REMOTE_RUNNER_TEST_DIR;
      delete process.env.REMOTE_RUNNER_TEST_AGENT;
    }
  });

  it('reads the config file from REMOTE_RUNNER_SSH_CONFIG when no file is given', async () => {
    process.env.REMOTE_RUNNER_SSH_CONFIG = config;
    try {
      expect(await resolveSshTarget('command')).toMatchObject({ hostname: '10.0.0.7', user: 'deploy', port: 2022, configFile: config });
    } finally {
      delete process.env.REMOTE_RUNNER_SSH_CONFIG;
    }
  });

  it.each([
    ['fdpass', 'ProxyUseFdpass yes is not supported: the ProxyCommand must speak SSH on its stdin and stdout'],
    // ssh -G itself refuses a jump through the host itself.
    ['loop', 'cannot resolve the host alias: exit 255: jumphost loop via loop'],
    ['bad-token', `IdentityFile ~/.ssh/id_%Z: the token %Z is not one ssh expands here`],
  ])('refuses the alias %s, naming it and the setting', async (alias, message) => {
    const error = await rejection(resolveSshTarget(alias, { configFile: config }));
    expect(error).toMatchObject({ code: 'E_SSH' });
    expect(error.message).toContain(`ssh -F ${config} -G ${alias}: ${message}`);
  });

  it('names the config file when ssh cannot read it', async () => {
    const missing = join(dir, 'missing');
    const error = await rejection(resolveSshTarget('plain', { configFile: missing }));
    expect(error.message).toMatch(new RegExp(`^ssh -F ${missing} -G plain: cannot resolve the host alias: exit 255: `));
  });
});
