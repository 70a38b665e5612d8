// `inspect`: writes the environment and params the instance received, for checking.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TgError } from '../../../helpers/shared/error.ts';
import type { CaseContext } from '../context.ts';

// Write `runenv.json` ({ env, params }) into TEST_OUTPUTS_PATH.
export async function inspect({ env, received, runenv }: CaseContext): Promise<void> {
  if (env.outputsPath === '') throw new TgError('E_RUNENV', 'run environment: TEST_OUTPUTS_PATH: inspect needs an outputs directory (got nothing)');
  const file = join(env.outputsPath, 'runenv.json');
  try {
    await mkdir(env.outputsPath, { recursive: true });
    await writeFile(file, `${JSON.stringify({ env: received, params: env.params }, null, 2)}\n`);
  } catch (error) {
    throw new TgError('E_OUTPUTS', `inspect: cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
  await runenv.recordMessage(`inspect: wrote ${file}`);
}
