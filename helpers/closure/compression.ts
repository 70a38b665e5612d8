// Compression that pays: before a copy, send a sample of what is to be sent both
// ways, as it is and through zstd, and compress only when that was clearly
// faster on this link, with this machine's CPU. On a fast link (or one whose
// SSH encryption already keeps the CPU busy) compression costs more than it
// saves; on a slow one it saves most of the time.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { execa } from 'execa';
import { REMOTE_NIX_PATH } from '../ssh/remote-shell.ts';
import type { SshSession } from '../ssh/session.ts';

/** How a copy's stream travels, and why. */
export interface Compression {
  method: 'zstd' | 'none';
  /** zstd's level, when it is used. */
  level?: number;
  /** For the progress line: what the trial measured. */
  note: string;
}

/** The level a copy uses unless a slow link makes a higher one pay. */
export const DEFAULT_LEVEL = 3;
/** The compressor at `level`, and the decompressor. */
export const ZSTD = { compress: (level = DEFAULT_LEVEL): string[] => ['zstd', `-${level}`, '-T0', '-q', '-c'], decompress: 'zstd -d -q -c' };

// On a slow link the CPU waits for the link anyway: a higher level sends fewer
// bytes and still keeps ahead of it (zstd -6 packs over 100 MB/s on two cores,
// -9 about 70 MB/s, while a 100 Mbit/s link takes about 12 MB/s of packed bytes).
// -6 sends about 7% fewer bytes than -3 for node's closure, -9 about 10%.
export function levelFor(linkBytesPerS: number): number {
  if (linkBytesPerS < 8e6) return 9;
  if (linkBytesPerS < SLOW_LINK) return 6;
  return DEFAULT_LEVEL;
}

// First a quick look at the link (two small transfers, so a command's fixed cost
// cancels out); a link slower than SLOW_LINK gains from zstd without a doubt
// (zstd keeps well ahead of it and sends about a third of the bytes).
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
const NO_ZSTD: Compression = { method: 'none', note: 'uncompressed (no zstd on both ends)' };

// Decide how to send `bytes` of `nix-store --export <paths>` to the host.
export async function chooseCompression(ssh: SshSession, paths: string[], bytes: number, signal?: AbortSignal): Promise<Compression> {
  if (bytes < WORTH_TRYING) return { method: 'none', note: 'uncompressed (small)' };
  if (!(await localZstd())) return NO_ZSTD;
  // Each probe also asks whether the host has zstd: the same fixed cost in both, which the slope cancels.
  const probe = (bytes: number) => timed(() => ssh.run(`cat >/dev/null; ${REMOTE_NIX_PATH}; command -v zstd >/dev/null && echo zstd`, { stdin: Buffer.alloc(bytes, 0x5a), ...(signal ? { signal } : {}) }));
  const small = await probe(PROBE_SMALL);
  if (small.value.stdout.trim() !== 'zstd') return NO_ZSTD;
  const large = await probe(PROBE_LARGE);
  const link = (PROBE_LARGE - PROBE_SMALL) / Math.max((large.ms - small.ms) / 1000, 1e-3);
  if (link < SLOW_LINK) {
    const level = levelFor(link);
    return { method: 'zstd', level, note: `zstd -${level} (link ${(link / 1e6).toFixed(1)} MB/s)` };
  }
  const sample = await exportSample(paths);
  const raw = await timed(() => ssh.run('cat >/dev/null', { stdin: sample, ...(signal ? { signal } : {}) }));
  const { ms: packed, value: size } = await timed(() => sendCompressed(ssh, sample, signal));
  const trial = `trial of ${Math.round(sample.length / 1e6)} MB: ${secs(raw.ms)} as it is, ${secs(packed)} through zstd to ${Math.round((100 * size) / sample.length)}%`;
  return packed < raw.ms * MARGIN ? { method: 'zstd', level: DEFAULT_LEVEL, note: `zstd -${DEFAULT_LEVEL} (${trial})` } : { method: 'none', note: `uncompressed (${trial})` };
}

async function timed<T>(step: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await step();
  return { value, ms: performance.now() - started };
}

async function localZstd(): Promise<boolean> {
  return (await execa('zstd', ['--version'], { reject: false, stdin: 'ignore' })).exitCode === 0;
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
  const channel = await ssh.exec(`${REMOTE_NIX_PATH}; ${ZSTD.decompress} >/dev/null`, signal ? { signal } : {});
  channel.on('data', () => {});
  channel.stderr.on('data', () => {});
  const closed = once(channel, 'close');
  const [command, ...args] = ZSTD.compress();
  const zstd = spawn(command!, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  let size = 0;
  zstd.stdout.on('data', (chunk: Buffer) => (size += chunk.length));
  zstd.stdout.pipe(channel);
  zstd.stdin.end(sample);
  await closed;
  return size;
}
