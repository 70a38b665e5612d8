// The Go remote agent for tests: built once per test process, and its `pack` subcommand as a stream.
import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { execa } from 'execa';
import { TgError } from '../../helpers/shared/error.ts';
import { repoRoot } from './tg-run.ts';

let built: Promise<string> | undefined;

// Build go/cmd/remote-agent into .cache/bin once per process and resolve with the binary's path.
export function agentBinary(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  const out = `${repoRoot}.cache/bin/remote-agent`;
  await mkdir(`${repoRoot}.cache/bin`, { recursive: true });
  try {
    await execa('go', ['build', '-trimpath', '-ldflags=-s', '-o', out, './cmd/remote-agent'], {
      cwd: `${repoRoot}go`,
      env: { CGO_ENABLED: '0' },
      stdin: 'ignore',
      timeout: 300_000,
    });
  } catch (error) {
    throw new Error(`cannot build the remote agent (go/cmd/remote-agent): ${(error as Error).message}`, { cause: error });
  }
  return out;
}

/** The stdout of `remote-agent pack`, and how the agent ended. */
export type AgentPack = Readable & {
  /** Settles once the agent has exited: its exit code, or the signal that ended it. */
  exited: Promise<number | string>;
};

// The tar stream `remote-agent pack <dir>` writes. It ends only after the agent
// exited 0; an agent that fails destroys it with E_OUTPUTS and the agent's message.
// Aborting `signal`, or destroying the stream, closes the agent's stdout as a reader that goes away would.
export async function agentPack(dir: string, options: { signal?: AbortSignal } = {}): Promise<AgentPack> {
  const { signal } = options;
  const child = spawn(await agentBinary(), ['pack', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.pipe(out, { end: false });
  const onAbort = (): void => {
    out.destroy(signal?.reason);
  };
  out.once('close', () => {
    signal?.removeEventListener('abort', onAbort);
    child.stdout.destroy();
  });
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (error) => {
      out.destroy(error);
      resolve(-1);
    });
    child.once('close', (code, killedBy) => {
      if (code === 0) out.end();
      else out.destroy(new TgError('E_OUTPUTS', stderr.trim() || `remote-agent pack ${dir} ended by ${killedBy}`));
      resolve(code ?? killedBy ?? -1);
    });
  });
  return Object.assign(out, { exited });
}

let runnerBuilt: Promise<string> | undefined;

// A bin directory holding `remote-runner` (the Go instance process, built from go/)
// and `remote-runner-controller` (this checkout's controller), as an installed
// package puts them on the PATH; built once per process.
export function runnerBinDir(): Promise<string> {
  runnerBuilt ??= (async () => {
    const dir = `${repoRoot}.cache/runner-bin`;
    await mkdir(dir, { recursive: true });
    await execa('go', ['build', '-trimpath', '-ldflags=-s', '-o', `${dir}/remote-runner`, './cmd/remote-runner'], { cwd: `${repoRoot}go`, env: { CGO_ENABLED: '0' }, stdin: 'ignore', timeout: 300_000 });
    await writeFile(`${dir}/remote-runner-controller`, `#!/bin/sh\nexec node ${repoRoot}bin/remote-runner-controller.js "$@"\n`);
    await chmod(`${dir}/remote-runner-controller`, 0o755);
    return dir;
  })();
  return runnerBuilt;
}
