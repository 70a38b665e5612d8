// Values reach apps as UTF-8 text. Node decodes its arguments as UTF-8 and
// replaces invalid bytes, so a value that is not UTF-8 would arrive altered;
// this reads the raw bytes (Linux /proc) to refuse such values instead. (The
// instance's process, go/runner, refuses such environment values.)
import { readFileSync } from 'node:fs';
import { TgError, quoteShort } from './error.ts';

const strict = new TextDecoder('utf-8', { fatal: true });

// The first NUL-separated item of /proc/self/<file> that is not UTF-8, and where.
function firstInvalid(file: 'cmdline'): { item: Buffer } | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync(`/proc/self/${file}`);
  } catch {
    return undefined; // no /proc: nothing to check
  }
  for (let start = 0; start < raw.length; ) {
    const end = raw.indexOf(0, start);
    const item = raw.subarray(start, end < 0 ? raw.length : end);
    try {
      strict.decode(item);
    } catch {
      return { item };
    }
    start = end < 0 ? raw.length : end + 1;
  }
  return undefined;
}

// Where a byte sequence stops being UTF-8.
function badByte(item: Buffer): number {
  for (let n = item.length; n > 0; n--) {
    try {
      strict.decode(item.subarray(0, n));
      return n;
    } catch {
      // shorter
    }
  }
  return 0;
}

// Refuse a command-line argument that is not UTF-8, naming its position.
export function requireUtf8Arguments(): void {
  const bad = firstInvalid('cmdline');
  if (!bad) return;
  const good = badByte(bad.item);
  throw new TgError('E_USAGE', `argument ${quoteShort(`${bad.item.subarray(0, good).toString('utf8')}…`, 40)} holds bytes that are not UTF-8 (byte ${good}); params reach the app as UTF-8 text only`);
}
