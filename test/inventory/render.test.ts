// Rendering the inventory for Nix (machines files) and OpenSSH (ssh_config, known_hosts), the
// --check table, and the probe's verdicts: whole strings compared, so a format change shows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SshTarget } from '../../helpers/ssh/ssh-config.ts';
import {
  judgeProbe,
  loadRunners,
  machineLine,
  nixSystem,
  renderCheckTable,
  renderKnownHosts,
  renderMachines,
  renderSshConfig,
  type HostCheck,
  type InventoryEntry,
  type ResolvedHost,
} from '../../helpers/inventory/index.ts';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERE';
const b64 = (line: string): string => Buffer.from(line).toString('base64');

function target(alias: string, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    alias,
    hostname: '10.0.0.1',
    port: 22,
    user: 'root',
    identityFiles: ['/keys/id_ed25519'],
    userKnownHostsFiles: ['/root/.ssh/known_hosts'],
    globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts'],
    strictHostKeyChecking: 'true',
    ...overrides,
  };
}

function host(entry: InventoryEntry, t: SshTarget, hostKeys: string[]): ResolvedHost {
  return { entry, target: t, hostKeys };
}

const hosts: ResolvedHost[] = [
  host({ name: 'h1', arch: 'x86_64-linux' }, target('h1'), [KEY_A, KEY_B]),
  host(
    {
      name: 'h2',
      arch: 'aarch64-linux',
      protocol: 'ssh-ng',
      systems: ['aarch64-linux', 'armv7l-linux'],
      maxJobs: 8,
      speedFactor: 2,
      supportedFeatures: ['kvm', 'big-parallel'],
      mandatoryFeatures: ['benchmark'],
      hostKey: KEY_B,
    },
    target('h2', { hostname: 'h2.example', user: 'nix', identityFiles: ['/keys/id_h2', '/keys/other'] }),
    [KEY_B],
  ),
  host({ name: 'h3', arch: 'x86_64-darwin' }, target('h3', { hostname: '10.0.0.3', port: 2222, identityFiles: [] }), [KEY_A]),
];

describe('renderMachines', () => {
  it('writes one machines line per host, by address with its pinned key, or by alias when Nix cannot carry the port', () => {
    expect(renderMachines(hosts)).toBe(
      [
        '# h1',
        `ssh://root@10.0.0.1 x86_64-linux /keys/id_ed25519 - - - - ${b64(KEY_A)}`,
        '# h2',
        `ssh-ng://nix@h2.example aarch64-linux,armv7l-linux /keys/id_h2 8 2 kvm,big-parallel benchmark ${b64(KEY_B)}`,
        '# h3 (reached through its ssh_config alias: port 2222 cannot be written in a machines line)',
        'ssh://root@h3 x86_64-darwin - - - - - -',
        '',
      ].join('\n'),
    );
  });

  it('says so when no host key is pinned', () => {
    expect(renderMachines([host({ name: 'h1', arch: 'x86_64-linux' }, target('h1'), [])])).toBe(
      '# h1 (no pinned host key found: Nix falls back to its known_hosts)\nssh://root@10.0.0.1 x86_64-linux /keys/id_ed25519 - - - - -\n',
    );
  });

  it('refuses an identity file with a space, naming the host', () => {
    const spaced = host({ name: 'h1', arch: 'x86_64-linux' }, target('h1', { identityFiles: ['/keys/my key'] }), []);
    expect(() => renderMachines([spaced])).toThrow(/^h1: the identity file "\/keys\/my key" holds whitespace or "#", which a machines file cannot carry$/);
  });

  it('reads back as the same hosts, systems, features and host key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inventory-render-'));
    try {
      const path = join(dir, 'machines');
      await writeFile(path, renderMachines(hosts.slice(0, 2)));
      expect(await loadRunners(`@${path}`)).toEqual([
        { name: '10.0.0.1', arch: 'x86_64-linux', protocol: 'ssh', user: 'root', systems: ['x86_64-linux'], identityFile: '/keys/id_ed25519', hostKey: KEY_A },
        { ...hosts[1]!.entry, name: 'h2.example', user: 'nix', identityFile: '/keys/id_h2' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('renderSshConfig', () => {
  it('writes a strict block per host that uses the resolved known_hosts files', () => {
    expect(renderSshConfig([hosts[0]!, hosts[2]!])).toBe(
      [
        'Host h1',
        '    HostName 10.0.0.1',
        '    Port 22',
        '    User root',
        '    IdentityFile /keys/id_ed25519',
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile /root/.ssh/known_hosts',
        '    GlobalKnownHostsFile /etc/ssh/ssh_known_hosts',
        '    StrictHostKeyChecking yes',
        '',
        'Host h3',
        '    HostName 10.0.0.3',
        '    Port 2222',
        '    User root',
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile /root/.ssh/known_hosts',
        '    GlobalKnownHostsFile /etc/ssh/ssh_known_hosts',
        '    StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    );
  });

  it('keeps a host behind a bastion behind it: ProxyJump and ProxyCommand in ssh_config, the alias in the machines line', () => {
    const jumped = host({ name: 'inner', arch: 'x86_64-linux' }, target('inner', { hostname: '10.9.0.5', proxyJump: [{ spec: 'ops@bastion:2200', user: 'ops', host: 'bastion', port: 2200 }] }), [KEY_A]);
    const commanded = host({ name: 'cmd', arch: 'x86_64-linux' }, target('cmd', { hostname: '10.9.0.6', proxyCommand: 'nc -X connect %h %p' }), [KEY_A]);
    const config = renderSshConfig([jumped, commanded]);
    expect(config).toContain('Host inner\n    HostName 10.9.0.5');
    expect(config).toContain('    ProxyJump ops@bastion:2200\n');
    expect(config).toContain('    ProxyCommand nc -X connect %h %p\n');
    expect(machineLine(jumped)).toMatch(/^ssh:\/\/root@inner /);
    expect(machineLine(commanded)).toMatch(/^ssh:\/\/root@cmd /);
    expect(renderMachines([jumped])).toContain('# inner (reached through its ssh_config alias: a proxy, HostKeyAlias or an IPv6 address cannot be written in a machines line)');
  });

  it('points every block at its own known_hosts file, which files each key under the name ssh looks up', () => {
    const aliased = host({ name: 'h4', arch: 'x86_64-linux' }, target('h4', { hostname: '10.0.0.4', hostKeyAlias: 'builder-4', identityFiles: ['/keys/with space'] }), [KEY_A]);
    expect(renderSshConfig([hosts[2]!, aliased], { knownHostsFile: '/tmp/inv/known_hosts' })).toBe(
      [
        'Host h3',
        '    HostName 10.0.0.3',
        '    Port 2222',
        '    User root',
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile /tmp/inv/known_hosts',
        '    GlobalKnownHostsFile /dev/null',
        '    StrictHostKeyChecking yes',
        '',
        'Host h4',
        '    HostName 10.0.0.4',
        '    Port 22',
        '    User root',
        '    IdentityFile "/keys/with space"',
        '    IdentitiesOnly yes',
        '    UserKnownHostsFile /tmp/inv/known_hosts',
        '    GlobalKnownHostsFile /dev/null',
        '    HostKeyAlias builder-4',
        '    StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    );
    expect(renderKnownHosts([...hosts, aliased])).toBe(
      [`10.0.0.1 ${KEY_A}`, `10.0.0.1 ${KEY_B}`, `h2.example ${KEY_B}`, `[10.0.0.3]:2222 ${KEY_A}`, `builder-4 ${KEY_A}`, ''].join('\n'),
    );
  });
});

describe('the probe', () => {
  it.each([
    ['x86_64', 'Linux', 'x86_64-linux'],
    ['aarch64', 'Linux', 'aarch64-linux'],
    ['arm64', 'Darwin', 'aarch64-darwin'],
    ['x86_64', 'Darwin', 'x86_64-darwin'],
    ['amd64', 'FreeBSD', 'x86_64-freebsd'],
  ])('maps uname %s %s to %s', (machine, kernel, system) => {
    expect(nixSystem(machine, kernel)).toBe(system);
  });

  it.each<[string, string, string, Partial<HostCheck>]>([
    ['a Linux host with Nix', 'machine=x86_64\nkernel=Linux\nnix=nix-store (Nix) 2.18.1\n', 'x86_64-linux', { state: 'up', nix: '2.18.1', system: 'x86_64-linux', detail: 'nix-store (Nix) 2.18.1' }],
    ['a host without Nix', 'machine=x86_64\nkernel=Linux\nnix=-\n', 'x86_64-linux', { state: 'down', nix: undefined, detail: 'no Nix: nix-store is not on the PATH nor in /nix/var/nix/profiles/default/bin' }],
    ['a broken Nix', 'machine=x86_64\nkernel=Linux\nnix-failed=error: cannot open /nix/var \n', 'x86_64-linux', { state: 'down', detail: 'nix-store --version failed: error: cannot open /nix/var' }],
    ['a Mac listed as Linux', 'machine=arm64\nkernel=Darwin\nnix=nix-store (Nix) 2.24.0\n', 'aarch64-linux', { state: 'down', system: 'aarch64-darwin', detail: 'the host is aarch64-darwin, but its arch is aarch64-linux' }],
    ['output without uname', 'welcome!\n', 'x86_64-linux', { state: 'down', system: undefined, detail: 'the probe printed no uname: welcome!' }],
  ])('judges %s', (_what, stdout, arch, verdict) => {
    expect(judgeProbe(stdout, arch)).toMatchObject(verdict);
  });

  it('prints the check table with the detail last', () => {
    const checks: HostCheck[] = [
      { name: 'localhost', arch: 'x86_64-linux', ssh: 'local', nix: '2.18.1', system: 'x86_64-linux', state: 'up', detail: 'nix-store (Nix) 2.18.1', ms: 12 },
      { name: 'lab-h2', arch: 'x86_64-linux', ssh: 'failed', nix: undefined, system: undefined, state: 'down', detail: 'ssh lab-h2 (10.231.0.12:22): connection refused', ms: 3 },
    ];
    expect(renderCheckTable(checks)).toBe(
      [
        'HOST       ARCH          SSH     NIX     SYSTEM        STATE  DETAIL',
        'localhost  x86_64-linux  local   2.18.1  x86_64-linux  up     nix-store (Nix) 2.18.1',
        'lab-h2     x86_64-linux  failed  -       -             down   ssh lab-h2 (10.231.0.12:22): connection refused',
        '',
      ].join('\n'),
    );
  });
});
