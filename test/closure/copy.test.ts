// Copies the way real networks need them, on lab hosts: the host's own
// substituters first (the lab's binary cache standing in for cache.nixos.org),
// the fallback when it has none or cannot reach one, and compression chosen by
// measuring the link: on a slow link, not on a fast one.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyClosure } from '../../helpers/closure/copy.ts';
import { localClosure } from '../../helpers/closure/store.ts';
import { resolveSshTarget } from '../../helpers/ssh/ssh-config.ts';
import { openSsh } from '../../helpers/ssh/session.ts';
import { buildRunner, labDown, labUp, type RunnerBuild } from '../helpers/lab.ts';
import { repoRoot } from '../helpers/tg-run.ts';

let build: RunnerBuild;
const lab = (...args: string[]) => execa(`${repoRoot}scripts/lab`, args, { timeout: 120_000 });
const CACHE = 'file:///var/lib/remote-runner-lab/binary-cache';

// Copy the app's closure to `host` over a fresh connection.
async function copyTo(host: string) {
  const ssh = await openSsh(await resolveSshTarget(host), { signal: AbortSignal.timeout(30_000) });
  try {
    return await copyClosure(ssh, host, build.plan, { signal: AbortSignal.timeout(240_000) });
  } finally {
    await ssh.close();
  }
}

beforeAll(async () => {
  build = await buildRunner();
  await labUp(4);
  // The cache holds the app's dependencies (node), not the app itself.
  const closure = await localClosure([build.plan]);
  await lab('cache', 'add', ...closure.filter((p) => p !== build.plan));
}, 600_000);
afterAll(labDown);

describe('copies to lab hosts', { timeout: 300_000 }, () => {
  it('lets the host fetch what its substituters have, and sends only the rest', async () => {
    await lab('substituter', 'lab-h1', CACHE);
    const report = await copyTo('lab-h1');
    expect(report.substituted).toBeGreaterThan(0);
    expect(report.missing).toBe(1);
    expect(report.bytes).toBeLessThan(10e6);
  });

  it('sends the whole closure to a host without substituters', async () => {
    await lab('substituter', 'lab-h2', 'none');
    const report = await copyTo('lab-h2');
    expect(report.substituted).toBe(0);
    expect(report.missing).toBe(report.closure);
  });

  it('falls back to sending everything, within a bound, when the host’s substituter cannot be reached', async () => {
    await lab('substituter', 'lab-h3', 'http://10.231.0.250:8080');
    const started = Date.now();
    const report = await copyTo('lab-h3');
    expect(report.substituted).toBe(0);
    expect(report.missing).toBe(report.closure);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('compresses on a slow link and not on a fast one, and says what it measured', async () => {
    await lab('substituter', 'lab-h4', 'none');
    await lab('shape', 'lab-h4', '--rate', '50mbit');
    try {
      const slow = await copyTo('lab-h4');
      expect(slow.compression).toMatch(/^zstd -[69] \(link [\d.]+ MB\/s\)$/);
      expect(slow.bytes).toBeLessThan(0.7 * 100e6);
    } finally {
      await lab('unshape', 'lab-h4');
    }
    await execa(`${repoRoot}scripts/lab`, ['exec', 'lab-h4', '--', 'sh', '-c', `nix-store --delete $(nix-store -qR ${build.plan}) >/dev/null 2>&1 || true`]);
    const fast = await copyTo('lab-h4');
    expect(fast.compression).toMatch(/^uncompressed \(trial of 17 MB: [\d.]+ s as it is, [\d.]+ s through zstd to \d+%\)$/);
  });
});
