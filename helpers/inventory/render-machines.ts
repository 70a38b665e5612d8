// Nix machines files from resolved hosts: what `--builders @file` and /etc/nix/machines read.
import { TgError } from '../shared/error.ts';
import type { SshTarget } from '../ssh/ssh-config.ts';
import type { ResolvedHost } from '../ssh/resolve.ts';

// One field; Nix splits a line on whitespace, so a value that holds any cannot be written.
function machineField(value: string | number | undefined, alias: string, what: string): string {
  if (value === undefined || value === '') return '-';
  const text = String(value);
  if (/[\s#]/.test(text)) throw new TgError('E_PARAM', `${alias}: the ${what} ${JSON.stringify(text)} holds whitespace or "#", which a machines file cannot carry`);
  return text;
}

// Nix reaches a host by its address and checks the pinned key under that address: only on
// port 22, without HostKeyAlias, and without a proxy (a bastion needs the ssh_config alias).
export function reachableByAddress(target: SshTarget): boolean {
  const proxied = target.proxyCommand !== undefined || (target.proxyJump?.length ?? 0) > 0;
  return target.port === 22 && target.hostKeyAlias === undefined && !target.hostname.includes(':') && !proxied;
}

// The machines line of one host: `ssh://user@host systems identity maxJobs speedFactor features mandatory hostKey`.
export function machineLine(host: ResolvedHost): string {
  const { entry, target } = host;
  const byAddress = reachableByAddress(target);
  const hostKey = byAddress && host.hostKeys[0] !== undefined ? Buffer.from(host.hostKeys[0]).toString('base64') : undefined;
  const fields = [
    `${entry.protocol ?? 'ssh'}://${target.user}@${byAddress ? target.hostname : entry.name}`,
    entry.systems?.join(',') ?? entry.arch,
    target.identityFiles[0],
    entry.maxJobs,
    entry.speedFactor,
    entry.supportedFeatures?.join(','),
    entry.mandatoryFeatures?.join(','),
    hostKey,
  ];
  const names = ['host', 'systems', 'identity file', 'max jobs', 'speed factor', 'supported features', 'mandatory features', 'host key'];
  return fields.map((value, i) => machineField(value, entry.name, names[i]!)).join(' ');
}

// A machines file for the hosts, each line below a comment naming its alias (and why it is used, if it is).
export function renderMachines(hosts: readonly ResolvedHost[]): string {
  const lines: string[] = [];
  for (const host of hosts) {
    const { target } = host;
    const note = reachableByAddress(target)
      ? host.hostKeys.length === 0 ? ' (no pinned host key found: Nix falls back to its known_hosts)' : ''
      : ` (reached through its ssh_config alias: ${target.port !== 22 ? `port ${target.port}` : 'a proxy, HostKeyAlias or an IPv6 address'} cannot be written in a machines line)`;
    lines.push(`# ${target.alias}${note}`, machineLine(host));
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
