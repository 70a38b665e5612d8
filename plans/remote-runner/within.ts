// Bound a wait: reject with a TgError naming what was awaited when time runs out.
import { TgError } from '../../helpers/shared/error.ts';

// Resolve with `promise`, or reject with E_TIMEOUT and `what` after `ms`.
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TgError('E_TIMEOUT', `${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Wait `ms` milliseconds.
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
