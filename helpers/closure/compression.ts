// Compression that pays: before a copy, send a sample of what is to be sent both
// ways, as it is and through zstd, and compress only when that was clearly
// faster on this link, with this machine's CPU. On a fast link (or one whose
// SSH encryption already keeps the CPU busy) compression costs more than it
// saves; on a slow one it saves most of the time.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { execa } from 'execa';
import type { SshSession } from '../ssh/session.ts';

/** How a copy's stream travels, and why. */
export interface Compression {
  method: 'zstd' | 'none';
  /** For the progress line: what the trial measured. */
  note: string;
}

/** The compressor and decompressor commands. */
export const ZSTD = { compress: ['zstd', '-3', '-T0', '-q', '-c'], decompress: 'zstd -d -q -c' };

// First a quick look at the link (two small transfers, so a command's fixed cost
// cancels out); a link slower than SLOW_LINK gains from zstd without a doubt
// (zstd -3 keeps well ahead of it and sends about a third of the bytes).
const PROBE_SMALL = 1024 * 1024;
const PROBE_LARGE = 3 * 1024 * 1024;
const SLOW_LINK = 20e6;
// On a faster link, a trial of this much of the export, both ways, decides.
const SAMPLE_BYTES = 16 * 1024 * 1024;
// Smaller copies are sent as they are: the trial would cost more than it saves.
const WORTH_TRYING = 32 * 1024 * 1024;
// Compress only when the trial was clearly faster that way.
const MARGIN = 0.85;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// Decide how to send `bytes` of `nix-store --export <paths>` to the host.
export async function chooseCompression(ssh: SshSession, paths: string[], bytes: number, signal?: AbortSignal): Promise<Compression> {
  if (bytes < WORTH_TRYING) return { method: 'none', note: 'uncompressed (small)' };
  if (!(await localZstd()) || !(await remoteZstd(ssh, signal))) return { method: 'none', note: 'uncompressed (no zstd on both ends)' };
  const small = await timed(() => ssh.run('cat >/dev/null', { stdin: Buffer.alloc(PROBE_SMALL, 0x5a), ...(signal ? { signal } : {}) }));
  const large = await timed(() => ssh.run('cat >/dev/null', { stdin: Buffer.alloc(PROBE_LARGE, 0x5a), ...(signal ? { signal } : {}) }));
  const link = (PROBE_LARGE - PROBE_SMALL) / Math.max((large.ms - small.ms) / 1000, 1e-3);
  if (link < SLOW_LINK) return { method: 'zstd', note: `zstd (link ${(link / 1e6).toFixed(1)} MB/s)` };
  const sample = await exportSample(paths);
  const raw = await timed(() => ssh.run('cat >/dev/null', { stdin: sample, ...(signal ? { signal } : {}) }));
  const { ms: packed, value: size } = await timed(() => sendCompressed(ssh, sample, signal));
  const trial = `trial of ${Math.round(sample.length / 1e6)} MB: ${secs(raw.ms)} as it is, ${secs(packed)} through zstd to ${Math.round((100 * size) / sample.length)}%`;
  return packed < raw.ms * MARGIN ? { method: 'zstd', note: `zstd (${trial})` } : { method: 'none', note: `uncompressed (${trial})` };
}

async function timed<T>(step: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await step();
  return { value, ms: performance.now() - started };
}

async function localZstd(): Promise<boolean> {
  return (await execa('zstd', ['--version'], { reject: false, stdin: 'ignore' })).exitCode === 0;
}

async function remoteZstd(ssh: SshSession, signal?: AbortSignal): Promise<boolean> {
  const result = await ssh.run('command -v zstd >/dev/null', signal ? { signal } : {}).catch(() => undefined);
  return result?.code === 0;
}

// The first SAMPLE_BYTES of the export: what the copy will send.
async function exportSample(paths: string[]): Promise<Buffer> {
  const exported = spawn('nix-store', ['--export', ...paths], { stdio: ['ignore', 'pipe', 'ignore'] });
  const chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const chunk of exported.stdout) {
      chunks.push(chunk as Buffer);
      have += (chunk as Buffer).length;
      if (have >= SAMPLE_BYTES) break;
    }
  } finally {
    exported.kill('SIGKILL');
  }
  return Buffer.concat(chunks).subarray(0, SAMPLE_BYTES);
}

// Compress `sample` here and decompress it on the host, as a copy would; resolves with the compressed size.
async function sendCompressed(ssh: SshSession, sample: Buffer, signal?: AbortSignal): Promise<number> {
  const channel = await ssh.exec(`${ZSTD.decompress} >/dev/null`, signal ? { signal } : {});
  channel.on('data', () => {});
  channel.stderr.on('data', () => {});
  const closed = once(channel, 'close');
  const zstd = spawn(ZSTD.compress[0]!, ZSTD.compress.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
  let size = 0;
  zstd.stdout.on('data', (chunk: Buffer) => (size += chunk.length));
  zstd.stdout.pipe(channel);
  zstd.stdin.end(sample);
  await closed;
  return size;
}
