// Builds Testground's own Go sync service once per test run, and (as root) the binaries
// scripts/testground brings up: testground v0.6.0 itself and its images' binaries, cached in
// .cache/testground so that only the first run on a machine pays for them. A failure here
// fails the whole run loudly: the conformance suite never silently skips the Go peer.
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    goSyncPeer: string;
  }
}

const root = fileURLToPath(new URL('..', import.meta.url));

export default async function setup(project: TestProject): Promise<void> {
  const out = `${root}.cache/bin/go-sync-peer`;
  await mkdir(`${root}.cache/bin`, { recursive: true });
  try {
    await execa('go', ['build', '-o', out, '.'], {
      cwd: `${root}test/go-sync-peer`,
      env: { GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      timeout: 600_000,
    });
  } catch (error) {
    throw new Error(`cannot build Testground's Go sync service (test/go-sync-peer): ${(error as Error).message}`, { cause: error });
  }
  project.provide('goSyncPeer', out);

  // scripts/testground runs as root only, as do the tests that use it.
  if (process.getuid?.() === 0) {
    try {
      await execa(`${root}scripts/testground`, ['build'], { stdin: 'ignore', timeout: 900_000 });
    } catch (error) {
      throw new Error(`cannot build testground v0.6.0 and its images' binaries (scripts/testground build): ${(error as Error).message}`, { cause: error });
    }
  }
}
