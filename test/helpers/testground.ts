// Testground's real daemon (scripts/testground), for tests that run plans through it.
import { execa, type Result } from 'execa';
import { repoRoot } from './tg-run.ts';

const script = `${repoRoot}scripts/testground`;
// One user of the daemon at a time, machine-wide: a held flock, released by testgroundDown().
const USER_LOCK = '/run/remote-runner-testground.user.lock';
let holder: ReturnType<typeof execa> | undefined;
let clientEnv: TestgroundEnv | undefined;

/** What a testground client needs, as `scripts/testground env` prints it. */
export interface TestgroundEnv {
  /** The daemon's home, whose .env.toml names the daemon's endpoint for clients. */
  TESTGROUND_HOME: string;
  /** The testground v0.6.0 binary (client and daemon). */
  TESTGROUND_BIN: string;
  /** The socket of the dockerd that scripts/testground runs. */
  DOCKER_HOST: string;
}

// Wait for, and hold, the machine-wide testground lock.
async function takeTestground(): Promise<void> {
  if (holder) return;
  // The lock lives as long as `cat` reads our stdin: testgroundDown() or our death ends it.
  const child = execa('flock', ['-w', '900', USER_LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdin: 'pipe', reject: false });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    void child.then((r) => reject(new Error(`cannot take the testground lock ${USER_LOCK}: ${r.stderr || `exit ${r.exitCode}`}`)));
  });
  holder = child;
}

// Run scripts/testground COMMAND; its failure message carries its output.
async function scriptCommand(command: string, timeout: number, env: Record<string, string> = {}): Promise<string> {
  const result = await execa(script, [command], { reject: false, stdin: 'ignore', timeout, env });
  if (result.exitCode !== 0 || result.timedOut) {
    throw new Error(`scripts/testground ${command} failed (${result.timedOut ? `timed out after ${timeout} ms` : `exit ${result.exitCode}`}): ${result.stderr}`);
  }
  return result.stdout;
}

/** Options of testgroundUp(). */
export interface TestgroundUpOptions {
  /**
   * Extra environment for the daemon, which inherits it from `scripts/testground up`: what its
   * exec:go builds and the plan instances see (GOPROXY, GONOSUMDB, GOFLAGS, ...).
   */
  env?: Record<string, string>;
}

// Bring a fresh daemon up (empty TESTGROUND_HOME); the caller must call testgroundDown().
export async function testgroundUp(options: TestgroundUpOptions = {}): Promise<TestgroundEnv> {
  await takeTestground();
  await scriptCommand('down', 120_000);
  // A cold cache builds testground first: minutes.
  await scriptCommand('up', 900_000, options.env);
  clientEnv = await testgroundEnv();
  return clientEnv;
}

// Tear everything down, then let the next user have the daemon.
export async function testgroundDown(): Promise<void> {
  try {
    await scriptCommand('down', 120_000);
  } finally {
    holder?.stdin?.end();
    await holder;
    holder = undefined;
  }
}

// The client environment, parsed from `scripts/testground env` (lines `export KEY=value`).
export async function testgroundEnv(): Promise<TestgroundEnv> {
  const out = await scriptCommand('env', 10_000);
  const vars = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^export ([A-Z_]+)=([\w@%+=:,./-]+)$/.exec(line);
    if (!m) throw new Error(`scripts/testground env: expected 'export KEY=value' with a plain value, got: ${line}`);
    vars.set(m[1]!, m[2]!);
  }
  const get = (key: keyof TestgroundEnv): string => {
    const value = vars.get(key);
    if (value === undefined) throw new Error(`scripts/testground env: no ${key} in: ${out}`);
    return value;
  };
  return { TESTGROUND_HOME: get('TESTGROUND_HOME'), TESTGROUND_BIN: get('TESTGROUND_BIN'), DOCKER_HOST: get('DOCKER_HOST') };
}

// Run the testground client against the daemon, bounded in time; never throws for a non-zero exit.
export async function testground(args: string[], options: { cwd?: string; timeout?: number } = {}): Promise<Result> {
  clientEnv ??= await testgroundEnv();
  const timeout = options.timeout ?? 60_000;
  return await execa(clientEnv.TESTGROUND_BIN, args, {
    env: { TESTGROUND_HOME: clientEnv.TESTGROUND_HOME, DOCKER_HOST: clientEnv.DOCKER_HOST },
    cwd: options.cwd ?? repoRoot,
    reject: false,
    stdin: 'ignore',
    all: true,
    timeout,
    cancelSignal: AbortSignal.timeout(timeout + 1_000),
  });
}
