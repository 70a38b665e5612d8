// TEST_INSTANCE_PARAMS: `k=v|k=v`, each pair split on its first `=` only.
import { TgError } from '../shared/error.ts';

// Unpack Testground's packed params. Pairs without `=` are ignored, as Testground does.
export function unpackParams(packed: string): Record<string, string> {
  const params: Record<string, string> = {};
  if (packed === '') return params;
  for (const pair of packed.split('|')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}

// Pack params for TEST_INSTANCE_PARAMS; a `|` cannot be carried, so it is refused.
export function packParams(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => {
      if (k === '' || k.includes('=') || k.includes('|')) {
        throw new TgError('E_PARAM', `param name ${JSON.stringify(k)} is invalid: it must be non-empty and hold no "=" or "|"`);
      }
      if (v.includes('|')) {
        throw new TgError('E_PARAM', `param ${k}: the value ${JSON.stringify(v)} holds "|", which TEST_INSTANCE_PARAMS cannot carry`);
      }
      return `${k}=${v}`;
    })
    .join('|');
}
