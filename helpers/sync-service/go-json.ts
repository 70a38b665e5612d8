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

// Text to emit as is, told apart from values still to encode.
class Text {
  constructor(readonly text: string) {}
}

// Encode a JSON-decoded value the way Go's json.Marshal(interface{}) would.
// Iterative, with its own stack: a deeply nested payload cannot overflow the call stack.
export function goMarshal(value: unknown): string {
  const out: string[] = [];
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const item = todo.pop();
    if (item instanceof Text) {
      out.push(item.text);
    } else if (item === undefined || item === null) {
      out.push('null');
    } else if (typeof item === 'string') {
      out.push(quote(item));
    } else if (typeof item === 'number' || typeof item === 'boolean') {
      out.push(JSON.stringify(item));
    } else if (Array.isArray(item)) {
      // The stack pops last-in first: push the closing bracket, then the elements backwards.
      out.push('[');
      todo.push(new Text(']'));
      for (let i = item.length - 1; i >= 0; i--) {
        todo.push(item[i]);
        if (i > 0) todo.push(new Text(','));
      }
    } else {
      const record = item as Record<string, unknown>;
      const keys = Object.keys(record).sort(byUtf8);
      out.push('{');
      todo.push(new Text('}'));
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        todo.push(record[key], new Text(`${quote(key)}:`));
        if (i > 0) todo.push(new Text(','));
      }
    }
  }
  return out.join('');
}
