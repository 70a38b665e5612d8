// The inventory bin without lab hosts: where it reads the list from, what it prints, how it
// fails, and --check / --live-only against localhost and a host name that does not resolve.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSystem } from '../../helpers/runners/runners.ts';
import { packParams } from '../../helpers/runenv/index.ts';

const DEAD = 'no-such-host.invalid';
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const inventory = (args: string[], extra: Record<string, string> = {}) =>
  execa('node', ['bin/inventory.js', ...args], { env: { ...env, ...extra }, extendEnv: false, reject: false, timeout: 30_000, stdin: 'ignore' });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inventory-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the inventory bin', () => {
  it('prints a machines file as the validated remote-runners list', async () => {
    const machines = join(dir, 'machines');
    await writeFile(machines, 'localhost\nssh://root@builder-1 x86_64-linux /k 4\nbuilder-2 aarch64-darwin\n');
    const result = await inventory(['--runners', `@${machines}`]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([{ name: 'localhost' }, { name: 'builder-1', arch: 'x86_64-linux' }, { name: 'builder-2', arch: 'aarch64-darwin' }]);
  });

  it('reads remote-runners from TEST_INSTANCE_PARAMS when --runners is not given', async () => {
    const list = [{ name: 'localhost' }, { name: 'h1', arch: 'aarch64-linux', build: 'remote' }];
    const result = await inventory([], { TEST_INSTANCE_PARAMS: packParams({ other: 'x', 'remote-runners': JSON.stringify(list) }) });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(list);
  });

  it.each<[string, string[], Record<string, string>, number, RegExp]>([
    ['no list at all', [], {}, 2, /^inventory: give --runners, or run inside an instance \(TEST_INSTANCE_PARAMS is not set\)\nusage: inventory /],
    ['an unknown format', ['--runners', '[{"name":"localhost"}]', '--format', 'yaml'], {}, 2, /^inventory: --format "yaml": expected one of json, machines, ssh-config\n/],
    ['a bad timeout', ['--runners', '[{"name":"localhost"}]', '--check', '--timeout', 'later'], {}, 2, /^inventory: --timeout: expected a duration such as 5s, 500ms or 1m \(up to 24h\), got "later"$/],
    ['a bad list', ['--runners', '[{"name":"h"}]'], {}, 1, /^inventory: param remote-runners\[0\]\.arch: arch is required for every host but localhost$/],
    ['a missing file', ['--runners', `@/nonexistent/machines`], {}, 1, /^inventory: param remote-runners: \/nonexistent\/machines: cannot be read \(ENOENT\)$/],
  ])('refuses %s', async (_what, args, extra, code, message) => {
    const result = await inventory(args, extra);
    expect(result.exitCode).toBe(code);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  it('checks localhost and a host that does not resolve, and exits 1 within the timeout', async () => {
    const started = performance.now();
    const result = await inventory(['--runners', JSON.stringify([{ name: 'localhost' }, { name: DEAD, arch: 'x86_64-linux' }]), '--check', '--timeout', '3s']);
    expect(performance.now() - started).toBeLessThan(3_000 + 5_000);
    expect(result.exitCode, result.stderr).toBe(1);
    const [header, local, dead] = result.stdout.split('\n');
    expect(header).toMatch(/^HOST\s+ARCH\s+SSH\s+NIX\s+SYSTEM\s+STATE\s+DETAIL$/);
    expect(local).toMatch(new RegExp(`^localhost\\s+${localSystem()}\\s+local\\s+\\d+\\.\\d+\\S*\\s+${localSystem()}\\s+up\\s+nix-store \\(Nix\\) `));
    expect(dead).toMatch(new RegExp(`^${DEAD.replaceAll('.', '\\.')}\\s+x86_64-linux\\s+failed\\s+-\\s+-\\s+down\\s+.*${DEAD.replaceAll('.', '\\.')}`));
  });

  it('exits 0 from --check when every host is up', async () => {
    const result = await inventory(['--runners', '[{"name":"localhost"}]', '--check']);
    expect(result.exitCode, result.stdout).toBe(0);
    expect(result.stdout).toMatch(/^localhost\s.*\sup\s/m);
  });

  it('reports localhost as down when its arch is another system', async () => {
    const other = localSystem() === 'aarch64-darwin' ? 'x86_64-linux' : 'aarch64-darwin';
    const result = await inventory(['--runners', JSON.stringify([{ name: 'localhost', arch: other }]), '--check']);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`down   the host is ${localSystem()}, but its arch is ${other}`);
  });

  it('prints only the live hosts with --live-only, the table on stderr', async () => {
    const result = await inventory(['--runners', JSON.stringify([{ name: DEAD, arch: 'x86_64-linux' }, { name: 'localhost' }]), '--live-only', '--timeout', '3s']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([{ name: 'localhost' }]);
    expect(result.stderr).toMatch(/^HOST\s+ARCH/);
    expect(result.stderr).toMatch(new RegExp(`^${DEAD.replaceAll('.', '\\.')}\\s.*\\sdown\\s`, 'm'));
  });

  it('exits 1 from --live-only when no host is up, printing nothing on stdout', async () => {
    const result = await inventory(['--runners', JSON.stringify([{ name: DEAD, arch: 'x86_64-linux' }]), '--live-only', '--timeout', '3s']);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`inventory: no runner is up (${DEAD})`);
  });

  it('writes empty machines, ssh_config and known_hosts for localhost alone', async () => {
    const out = join(dir, 'out-local');
    const result = await inventory(['--runners', '[{"name":"localhost"}]', '--format', 'machines', '--out-dir', out]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    for (const name of ['machines', 'ssh_config', 'known_hosts']) expect(await readFile(join(out, name), 'utf8')).toBe('');
  });
});
