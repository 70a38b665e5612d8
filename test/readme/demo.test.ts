// The README's front door: `./scripts/demo` runs the main job (server-client on
// localhost, lab-h1 and lab-h2), can run again at once, and leaves no lab host.
// The demo takes the machine-wide lab lock itself, so this file does not.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { removeAll, repoRoot, tempDir } from '../helpers/tg-run.ts';

const dirs: string[] = [];
afterAll(() => removeAll(dirs));

async function demo() {
  const outputs = await tempDir('demo-');
  dirs.push(outputs);
  const r = await execa(join(repoRoot, 'scripts/demo'), [], { env: { DEMO_OUTPUTS: outputs }, all: true, reject: false, stdin: 'ignore', timeout: 600_000 });
  return { ...r, outputs };
}

describe('./scripts/demo', { timeout: 1_300_000 }, () => {
  it('runs server-client on localhost, lab-h1 and lab-h2, twice in a row, and takes the lab down after each', async () => {
    for (let round = 1; round <= 2; round++) {
      const r = await demo();
      expect(r.exitCode, r.all).toBe(0);
      expect(r.all).toContain('3 instances: 3 success');
      const hosts = (r.all ?? '').split('\n').filter((line) => /^single\[00\d\]\s+single\s+\S+\s+success/.test(line)).map((line) => line.split(/\s+/)[2]);
      expect(hosts.sort(), r.all).toEqual(['lab-h1', 'lab-h2', 'localhost']);
      const run = /^run (\S+): outputs in (\S+)$/m.exec(r.all ?? '');
      expect(run?.[2]).toBe(join(r.outputs, 'remote-runner', run![1]!));
      expect(existsSync(join(run![2]!, 'single', '1'))).toBe(true);
      const status = await execa(join(repoRoot, 'scripts/lab'), ['status'], { reject: false, stdin: 'ignore' });
      expect(status.stdout.trim(), `round ${round}`).toBe('no lab hosts');
    }
  });
});
