// JSON encoding that matches Go's encoding/json for values decoded from JSON:
// object keys sorted by their UTF-8 bytes, and <, >, &, U+2028, U+2029 escaped.
// Testground's sync service re-marshals every payload this way before it reaches
// subscribers, so we do the same to hand out byte-identical `subscribe` strings.

const htmlUnsafe = /[<>&\u2028\u2029]/g;

function quote(text: string): string {
  return JSON.stringify(text).replace(htmlUnsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// Encode a JSON-decoded value the way Go's json.Marshal(interface{}) would.
export function goMarshal(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(goMarshal).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort(byUtf8);
  return `{${keys.map((k) => `${quote(k)}:${goMarshal(record[k])}`).join(',')}}`;
}
