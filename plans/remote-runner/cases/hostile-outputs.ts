// `hostile-outputs`: leaves outputs a careless puller would follow: a symlink to a
// directory outside the outputs with a file written through it, a symlink to a file
// outside, and a fifo. None of them may land outside TEST_OUTPUTS_PATH at home.
import { execFile } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CaseContext } from '../context.ts';

// Write the hostile tree, plus one honest file.
export async function hostileOutputs({ env, runenv }: CaseContext): Promise<void> {
  const outside = join(env.tempPath, 'outside');
  await mkdir(outside, { recursive: true });
  await writeFile(join(env.outputsPath, 'honest.txt'), 'an honest output\n');
  await symlink(outside, join(env.outputsPath, 'link-to-dir'));
  await writeFile(join(env.outputsPath, 'link-to-dir', 'written-through.txt'), 'written through a symlink\n');
  await symlink('/etc/passwd', join(env.outputsPath, 'link-to-passwd'));
  await promisify(execFile)('mkfifo', [join(env.outputsPath, 'a-fifo')]);
  await runenv.recordMessage('hostile-outputs: symlinks and a fifo are in place');
}
