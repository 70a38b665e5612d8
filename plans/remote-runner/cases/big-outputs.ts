// `big-outputs`: leaves outputs that cost more than they seem: a sparse file of
// `sparse_bytes` (a hole, a few KB on disk), `symlinks` links with targets of
// `target_bytes` each, and `file_bytes` of real data.
import { open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { intParam } from '../../../helpers/runenv/index.ts';
import type { CaseContext } from '../context.ts';

// Write the outputs the params ask for.
export async function bigOutputs({ env, runenv }: CaseContext): Promise<void> {
  const sparse = intParam(env, 'sparse_bytes', 0);
  const links = intParam(env, 'symlinks', 0);
  const target = intParam(env, 'target_bytes', 100);
  const data = intParam(env, 'file_bytes', 0);
  if (sparse > 0) {
    const file = await open(join(env.outputsPath, 'sparse.bin'), 'w');
    await file.write('start', 0);
    await file.write('end', sparse - 3);
    await file.close();
  }
  for (let i = 0; i < links; i++) await symlink(`/${'t'.repeat(Math.max(1, target - 1))}`, join(env.outputsPath, `link-${i}`));
  if (data > 0) await writeFile(join(env.outputsPath, 'data.bin'), Buffer.alloc(data, 7));
  await runenv.recordMessage(`big-outputs: sparse ${sparse} bytes, ${links} links of ${target} bytes, ${data} bytes of data`);
}
