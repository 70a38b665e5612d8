// Maps a bin's outcome to an exit code: one line for user errors, a stack for bugs.
import { isUserError } from './error.ts';

const PARENT_POLL_MS = 500;

// A bin must not outlive whoever started it: npx, for one, exits on SIGTERM
// without passing it on. When the parent goes, act as if it had sent SIGTERM.
function followParent(): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_MS);
  timer.unref();
}

// Run a bin's main function, setting process.exitCode instead of exiting. A
// daemon (`detached`) does not end with its parent.
export async function runMain(main: () => Promise<number | void>, options: { detached?: boolean } = {}): Promise<void> {
  if (!options.detached) followParent();
  try {
    const code = await main();
    if (typeof code === 'number') process.exitCode = code;
  } catch (error) {
    if (isUserError(error)) {
      const bin = process.argv[1]?.split('/').pop()?.replace(/\.(m?js|ts)$/, '') ?? 'error';
      process.stderr.write(`${bin}: ${error.message}\n`);
      process.exitCode = error.code === 'E_USAGE' ? 2 : 1;
    } else {
      process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 70;
    }
  }
}
