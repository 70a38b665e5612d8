// Maps a bin's outcome to an exit code: one line for user errors, a stack for bugs.
import { isUserError } from './error.ts';

// Run a bin's main function, setting process.exitCode instead of exiting.
export async function runMain(main: () => Promise<number | void>): Promise<void> {
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
