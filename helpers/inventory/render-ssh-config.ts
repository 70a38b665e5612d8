// ssh_config blocks and known_hosts lines for resolved hosts, with strict host key checking.
import { knownHostsName } from '../ssh/known-hosts.ts';
import { TgError } from '../shared/error.ts';
import type { ResolvedHost } from '../ssh/resolve.ts';

// One ssh_config argument, double-quoted when it holds whitespace; a `"` cannot be written.
function arg(value: string, alias: string): string {
  if (value.includes('"') || /[\r\n]/.test(value)) throw new TgError('E_PARAM', `${alias}: ${JSON.stringify(value)} cannot be written in ssh_config`);
  return /[\s#]/.test(value) ? `"${value}"` : value;
}

// The `Host` block of one host; `knownHostsFile` (our own file) replaces the resolved known_hosts files.
function block(host: ResolvedHost, knownHostsFile: string | undefined): string[] {
  const { target } = host;
  const alias = target.alias;
  const lines = [`Host ${alias}`, `    HostName ${arg(target.hostname, alias)}`, `    Port ${target.port}`, `    User ${arg(target.user, alias)}`];
  for (const file of target.identityFiles) lines.push(`    IdentityFile ${arg(file, alias)}`);
  lines.push('    IdentitiesOnly yes');
  if (target.identityAgent !== undefined) lines.push(`    IdentityAgent ${arg(target.identityAgent, alias)}`);
  if (target.proxyJump !== undefined && target.proxyJump.length > 0) lines.push(`    ProxyJump ${target.proxyJump.map((hop) => arg(hop.spec, alias)).join(',')}`);
  if (target.proxyCommand !== undefined) lines.push(`    ProxyCommand ${target.proxyCommand.replace(/[\r\n]/g, ' ')}`);
  if (knownHostsFile !== undefined) {
    lines.push(`    UserKnownHostsFile ${arg(knownHostsFile, alias)}`, '    GlobalKnownHostsFile /dev/null');
  } else {
    if (host.entry.hostKey !== undefined) lines.push('    # the machines file pins a host key of its own: write it out with --out-dir');
    if (target.userKnownHostsFiles.length > 0) lines.push(`    UserKnownHostsFile ${target.userKnownHostsFiles.map((f) => arg(f, alias)).join(' ')}`);
    if (target.globalKnownHostsFiles.length > 0) lines.push(`    GlobalKnownHostsFile ${target.globalKnownHostsFiles.map((f) => arg(f, alias)).join(' ')}`);
  }
  if (target.hostKeyAlias !== undefined) lines.push(`    HostKeyAlias ${arg(target.hostKeyAlias, alias)}`);
  lines.push('    StrictHostKeyChecking yes');
  if (host.hostKeys.length === 0) lines.push('    # no pinned host key was found: ssh refuses this host until one is added');
  return lines;
}

// An ssh_config with one block per host; with `knownHostsFile`, every block checks keys against that file alone.
export function renderSshConfig(hosts: readonly ResolvedHost[], options: { knownHostsFile?: string } = {}): string {
  return hosts.map((host) => `${block(host, options.knownHostsFile).join('\n')}\n`).join('\n');
}

// known_hosts lines for the hosts' pinned keys, each filed under the name ssh looks it up by.
export function renderKnownHosts(hosts: readonly ResolvedHost[]): string {
  const lines = hosts.flatMap((host) => {
    const name = knownHostsName({ host: host.target.hostname, port: host.target.port, hostKeyAlias: host.target.hostKeyAlias });
    return host.hostKeys.map((key) => `${name} ${key}`);
  });
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
