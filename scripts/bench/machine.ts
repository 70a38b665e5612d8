// The machine the numbers come from.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { execa } from 'execa';
import { nixEnv } from './util.ts';

export interface Machine {
  cpu: string;
  nproc: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  nix: string;
  openssh: string;
  /** /proc/loadavg when the run started: other work on the machine. */
  loadavg: string;
}

async function firstLine(command: string, args: string[], stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
  const r = await execa(command, args, { reject: false, stdin: 'ignore', env: nixEnv });
  return String(r[stream] ?? '').split('\n')[0]?.trim() || 'unknown';
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    nproc: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nix: await firstLine('nix', ['--version']),
    openssh: await firstLine('ssh', ['-V'], 'stderr'),
    loadavg: (await readFile('/proc/loadavg', 'utf8').catch(() => '')).split(' ').slice(0, 3).join(' ') || 'unknown',
  };
}
