// Durations as users type them for timeouts: `5s`, `500ms`, `1m`, `1m30s`, or plain seconds.
import { TgError } from './error.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

// Parse `text` into milliseconds (at least 1); errors name `what` (a flag or a param) and the value.
export function parseDurationMs(text: string, what: string): number {
  const trimmed = text.trim();
  const parts = /^\d+(\.\d+)?$/.test(trimmed) ? [[trimmed, trimmed, 's']] : [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  const ms = Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0));
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed || !(ms >= 1) || ms > 86_400_000) {
    const code = what.startsWith('-') ? 'E_USAGE' : 'E_PARAM';
    throw new TgError(code, `${what}: expected a duration such as 5s, 500ms or 1m (up to 24h), got ${JSON.stringify(text)}`);
  }
  return ms;
}
