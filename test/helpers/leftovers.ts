// Find processes that still carry a run's environment: nothing may outlive a run.
import { readFile, readdir } from 'node:fs/promises';

// Pids of live processes whose environment holds `KEY=value`.
export async function processesWithEnv(key: string, value: string): Promise<number[]> {
  const needle = `${key}=${value}\0`;
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const [environ, stat] = await Promise.all([readFile(`/proc/${name}/environ`, 'latin1'), readFile(`/proc/${name}/stat`, 'latin1')]);
      // Zombies are already dead; they only wait for their parent to reap them.
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (environ.includes(needle)) found.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
