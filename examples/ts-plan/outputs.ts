// Writing files to the instance's outputs dir, which the runner collects when the run ends.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunEnv } from '@testground/sdk';

// Write `value` as indented JSON to `name` in the outputs dir.
export async function writeJson(runenv: RunEnv, name: string, value: unknown): Promise<void> {
  await writeFile(join(runenv.testOutputsPath, name), `${JSON.stringify(value, null, 2)}\n`);
}
