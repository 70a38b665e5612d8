// Loads a TypeScript CLI module through tsx and runs its main().
import { register } from 'tsx/esm/api';

register();

export async function launch(modulePath) {
  const { runMain } = await import('../helpers/shared/cli.ts');
  const mod = await import(modulePath);
  await runMain(() => mod.main(), { detached: mod.detached === true });
}
