// Reading the test case's params, which arrive as strings.
import type { RunEnv } from '@testground/sdk';

// An int param, or `fallback` when the run did not set it. Testground passes
// every declared param with its default; the fallback matters only by hand.
export function intParam(runenv: RunEnv, name: string, fallback: number): number {
  const raw = runenv.testInstanceParams[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value)) {
    throw new Error(`param ${name}: expected an integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}
