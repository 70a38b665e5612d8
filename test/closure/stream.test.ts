// The copy stream's two ends, run with sh against this machine's own store: a
// receiver that keeps a spool while it imports, and a feeder that follows that
// spool from its first bytes to the receiver's end, or exports from the store.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feederScript, receiverScript, spoolDir, streamHeader } from '../../helpers/closure/stream.ts';
import { removeAll, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
let path: string;
let exported: Buffer;

beforeAll(async () => {
  const dir = await tempDir('stream-');
  dirs.push(dir);
  const file = join(dir, `stream-test-${randomBytes(4).toString('hex')}`);
  await writeFile(file, randomBytes(3 << 20));
  path = (await execa('nix-store', ['--add', file])).stdout.trim();
  exported = Buffer.from((await execa('nix-store', ['--export', path], { encoding: 'buffer' })).stdout);
});
afterAll(async () => {
  await execa('nix-store', ['--delete', path], { reject: false });
  await removeAll(dirs);
});

const feed = (spool?: string) => execa('sh', ['-c', feederScript([path], spool)], { encoding: 'buffer', timeout: 30_000 });

describe('the copy stream', { timeout: 60_000 }, () => {
  it('lets a feeder that starts with the first bytes follow the spool to the end, then removes the spool', async () => {
    const spool = spoolDir(`test-${randomBytes(6).toString('hex')}`);
    const receiver = execa('sh', ['-c', receiverScript(spool)], { timeout: 30_000 });
    receiver.stdin!.write(streamHeader('none'));
    const chunk = 64 << 10;
    receiver.stdin!.write(exported.subarray(0, chunk));
    // The feeder starts as soon as the spool is there, before most of the stream.
    const feeder = feed(spool);
    for (let at = chunk; at < exported.length; at += chunk) {
      receiver.stdin!.write(exported.subarray(at, at + chunk));
      await sleep(10);
    }
    receiver.stdin!.end();
    expect((await receiver).exitCode).toBe(0);
    const fed = await feeder;
    expect(Buffer.from(fed.stderr).toString()).toContain('feeding from the spool (none)');
    expect(Buffer.compare(Buffer.from(fed.stdout), Buffer.concat([Buffer.from(streamHeader('none')), exported]))).toBe(0);
    const deadline = Date.now() + 5_000;
    while (existsSync(spool) && Date.now() < deadline) await sleep(50);
    expect(existsSync(spool), `${spool} left behind`).toBe(false);
  });

  it('feeds from the store when the spool is gone', async () => {
    const fed = await feed(spoolDir(`test-${randomBytes(6).toString('hex')}`));
    expect(Buffer.from(fed.stderr).toString()).toContain('feeding from the store');
    expect(Buffer.compare(Buffer.from(fed.stdout), Buffer.concat([Buffer.from(streamHeader('none')), exported]))).toBe(0);
  });

  it('still imports when its spool cannot be made, as on a full /tmp', async () => {
    const dir = await tempDir('stream-');
    dirs.push(dir);
    const file = join(dir, `stream-test-${randomBytes(4).toString('hex')}`);
    await writeFile(file, randomBytes(64 << 10));
    const fresh = (await execa('nix-store', ['--add', file])).stdout.trim();
    const stream = Buffer.from((await execa('nix-store', ['--export', fresh], { encoding: 'buffer' })).stdout);
    await execa('nix-store', ['--delete', fresh]);
    const valid = () => execa('nix-store', ['--check-validity', fresh], { reject: false }).then((r) => r.exitCode === 0);
    expect(await valid()).toBe(false);
    // No directory can be made under /proc, not even by root.
    const r = await execa('sh', ['-c', receiverScript('/proc/remote-runner-spool-test')], { input: Buffer.concat([Buffer.from(streamHeader('none')), stream]), reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await valid()).toBe(true);
    await execa('nix-store', ['--delete', fresh], { reject: false });
  });

  it('refuses a stream without its header, naming what it read', async () => {
    const r = await execa('sh', ['-c', receiverScript()], { input: 'NIXARCHIVE\n', reject: false });
    expect(r.exitCode).toBe(91);
    expect(r.stderr).toContain('not a copy stream: NIXARCHIVE');
  });
});
