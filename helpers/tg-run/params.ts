// Merge a test case's param defaults with the given params and check their types.
import { TgError } from '../shared/error.ts';
import type { TestCase } from './manifest.ts';

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function check(name: string, type: string, value: string, options: string[] | undefined): void {
  const bad = (expected: string) => {
    throw new TgError('E_PARAM', `param ${name}: expected ${expected}, got ${JSON.stringify(value)}`);
  };
  switch (type) {
    case 'int':
      if (!/^[+-]?\d+$/.test(value)) bad('an int');
      break;
    case 'float':
      if (value.trim() === '' || Number.isNaN(Number(value))) bad('a float');
      break;
    case 'bool':
      if (!/^(true|false)$/i.test(value)) bad('true or false');
      break;
    case 'json':
      try {
        JSON.parse(value);
      } catch {
        bad('JSON');
      }
      break;
    case 'enum':
      if (options && !options.includes(value)) bad(`one of ${options.join(', ')}`);
      break;
    default:
      break;
  }
}

// Defaults of `testCase`, overridden by `given`. Like Testground, params the
// manifest does not declare are passed through; `warn` hears about each one.
export function resolveParams(testCase: TestCase, given: Record<string, string>, warn: (message: string) => void = () => {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(testCase.params)) {
    if (spec.default !== undefined) out[name] = asText(spec.default);
  }
  for (const [name, value] of Object.entries(given)) {
    if (!(name in testCase.params)) {
      warn(`param ${name} is not declared by test case ${testCase.name} (declared: ${Object.keys(testCase.params).join(', ') || 'none'}); passing it on as a string`);
    }
    out[name] = value;
  }
  for (const [name, value] of Object.entries(out)) {
    const spec = testCase.params[name];
    if (spec) check(name, spec.type, value, spec.options);
  }
  return out;
}

// Parse `k=v` flags (split on the first `=`).
export function parseKeyValues(flag: string, pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new TgError('E_USAGE', `${flag} ${JSON.stringify(pair)}: expected key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

// Check a group's instance count against the test case's limits.
export function checkInstances(testCase: TestCase, total: number): void {
  const { min, max } = testCase.instances;
  if (total < min || total > max) {
    throw new TgError('E_PARAM', `test case ${testCase.name} takes ${min} to ${max} instances, got ${total}`);
  }
}
