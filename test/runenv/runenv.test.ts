// The run environment: parsed once, validated with one line per bad variable, params typed.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  RUNENV_KEYS,
  boolParam,
  intParam,
  jsonParam,
  packParams,
  parseRunEnv,
  stringParam,
  unpackParams,
  type RunEnvKey,
} from '../../helpers/runenv/index.ts';
import { TgError } from '../../helpers/shared/error.ts';
import { awkwardValues, contract } from './contract.ts';

// The error a call throws, checked to be a TgError.
function thrown(fn: () => unknown): TgError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TgError);
    return error as TgError;
  }
  throw new Error('expected an error, got none');
}

describe('parseRunEnv', () => {
  it('turns a full contract into a typed run environment', () => {
    const vars = contract({ TEST_INSTANCE_PARAMS: 'a=1|b=two', TEST_GROUP_INSTANCE_COUNT: '2', TEST_INSTANCE_COUNT: '5' });
    const env = parseRunEnv(vars);
    expect(env).toMatchObject({
      plan: 'remote-runner',
      testCase: 'ok',
      run: 'c0ffee',
      repo: 'github.com/example/remote-runner',
      branch: 'main',
      tag: 'v1',
      group: 'single',
      groupInstanceCount: 2,
      instanceCount: 5,
      role: '',
      params: { a: '1', b: 'two' },
      outputsPath: '/tmp/outputs',
      tempPath: '/tmp/temp',
      sidecar: false,
      subnet: '127.1.0.1/16',
      captureProfiles: '',
      disableMetrics: true,
      syncService: { host: '127.0.0.1', port: 5050, url: 'ws://127.0.0.1:5050' },
      influxdbUrl: 'http://127.0.0.1:8086',
    });
    expect(env.startTime?.toISOString()).toBe('2024-05-06T07:08:09.000Z');
    expect(env.vars).toEqual(vars);
  });

  it('keeps only the contract in vars and ignores every other variable', () => {
    const env = parseRunEnv({ ...contract(), PATH: '/bin', HOME: '/root' });
    expect(Object.keys(env.vars).sort()).toEqual([...RUNENV_KEYS].sort());
  });

  it('fills in the defaults of the optional variables', () => {
    const env = parseRunEnv({
      TEST_PLAN: 'p',
      TEST_CASE: 'c',
      TEST_RUN: 'r',
      TEST_GROUP_ID: 'g',
      TEST_GROUP_INSTANCE_COUNT: '1',
      TEST_INSTANCE_COUNT: '1',
    });
    expect(env.syncService).toEqual({ host: 'testground-sync-service', port: 5050, url: 'ws://testground-sync-service:5050' });
    expect(env).toMatchObject({ params: {}, sidecar: false, disableMetrics: false, outputsPath: '', tempPath: '', repo: '' });
    expect(env.startTime).toBeUndefined();
    expect(env.subnet).toBeUndefined();
    expect(env.influxdbUrl).toBeUndefined();
  });

  it('brackets an IPv6 sync service host in its URL', () => {
    expect(parseRunEnv(contract({ SYNC_SERVICE_HOST: '::1', SYNC_SERVICE_PORT: '6000' })).syncService.url).toBe('ws://[::1]:6000');
  });

  it.each<[RunEnvKey, string | undefined]>([
    ['TEST_PLAN', undefined],
    ['TEST_PLAN', ''],
    ['TEST_CASE', ''],
    ['TEST_RUN', undefined],
    ['TEST_GROUP_ID', ''],
    ['TEST_GROUP_INSTANCE_COUNT', 'three'],
    ['TEST_INSTANCE_COUNT', '-1'],
    ['TEST_INSTANCE_COUNT', undefined],
    ['TEST_SIDECAR', 'maybe'],
    ['TEST_DISABLE_METRICS', 'nope'],
    ['TEST_START_TIME', 'yesterday'],
    ['TEST_SUBNET', '10.0.0.0'],
    ['SYNC_SERVICE_HOST', ''],
    ['SYNC_SERVICE_PORT', 'http'],
    ['SYNC_SERVICE_PORT', '99999'],
  ])('refuses %s=%j with one E_RUNENV line naming the variable', (key, value) => {
    const vars: Record<string, string | undefined> = contract();
    vars[key] = value;
    const error = thrown(() => parseRunEnv(vars));
    expect(error.code).toBe('E_RUNENV');
    expect(error.message).toMatch(new RegExp(`^run environment: ${key}: `));
    expect(error.message).toContain(value === undefined ? '(got nothing)' : `(got ${JSON.stringify(value)})`);
    expect(error.message).not.toContain('\n');
  });
});

describe('TEST_INSTANCE_PARAMS', () => {
  it('splits every pair on its first "=" only', () => {
    expect(unpackParams('expr=a=b|empty=|url=http://h/?q=1&r=2|plain=x')).toEqual({
      expr: 'a=b',
      empty: '',
      url: 'http://h/?q=1&r=2',
      plain: 'x',
    });
    expect(parseRunEnv(contract({ TEST_INSTANCE_PARAMS: 'remote-runners=[{"name":"localhost"}]|k=v=w' })).params).toEqual({
      'remote-runners': '[{"name":"localhost"}]',
      k: 'v=w',
    });
  });

  it('ignores pairs without a name or without "=", as Testground does', () => {
    expect(unpackParams('')).toEqual({});
    expect(unpackParams('novalue|=anonymous|a=1')).toEqual({ a: '1' });
  });

  it('round-trips values holding "=", spaces, quotes, $(), backticks, newlines and unicode', () => {
    const packed = packParams(awkwardValues);
    expect(unpackParams(packed)).toEqual(awkwardValues);
    expect(parseRunEnv(contract({ TEST_INSTANCE_PARAMS: packed })).params).toEqual(awkwardValues);
  });

  it('refuses a value holding "|", naming the param', () => {
    const error = thrown(() => packParams({ ok: 'fine', pipe: 'a|b' }));
    expect(error.code).toBe('E_PARAM');
    expect(error.message).toMatch(/^param pipe: .*"\|"/);
  });

  it.each(['', 'a=b', 'a|b'])('refuses the param name %j', (name) => {
    expect(thrown(() => packParams({ [name]: 'v' })).message).toContain(`param name ${JSON.stringify(name)} is invalid`);
  });
});

describe('param getters', () => {
  const env = {
    params: {
      name: 'lab-h1',
      count: '42',
      negative: '-3',
      padded: ' 7 ',
      word: 'ten',
      huge: '99999999999999999999',
      yes: 'TRUE',
      one: '1',
      no: 'no',
      blank: '',
      maybe: 'maybe',
      cfg: '{"hosts":["a",1]}',
      good: '{"hosts":["a","b"]}',
      broken: '{"hosts":',
      multiline: 'tru\ne',
    },
  };
  const cfgSchema = z.strictObject({ hosts: z.array(z.string()) });

  it('reads a string param, or its fallback when it is not set', () => {
    expect(stringParam(env, 'name')).toBe('lab-h1');
    expect(stringParam(env, 'blank', 'fallback')).toBe('');
    expect(stringParam(env, 'absent', 'fallback')).toBe('fallback');
  });

  it('names a param that is not set and has no default', () => {
    const error = thrown(() => stringParam(env, 'absent'));
    expect(error).toMatchObject({ code: 'E_PARAM', message: 'param absent: not set, and no default was given' });
  });

  it('reads integers, signed and padded, with a numeric fallback', () => {
    expect(intParam(env, 'count')).toBe(42);
    expect(intParam(env, 'negative')).toBe(-3);
    expect(intParam(env, 'padded')).toBe(7);
    expect(intParam(env, 'absent', 120)).toBe(120);
  });

  it.each(['word', 'huge', 'blank'])('refuses the non-integer param %s, naming it and its value', (name) => {
    expect(thrown(() => intParam(env, name)).message).toBe(`param ${name}: expected an integer, got ${JSON.stringify(env.params[name as keyof typeof env.params])}`);
  });

  it('reads booleans in their usual spellings', () => {
    expect(boolParam(env, 'yes')).toBe(true);
    expect(boolParam(env, 'one')).toBe(true);
    expect(boolParam(env, 'no')).toBe(false);
    expect(boolParam(env, 'blank')).toBe(false);
    expect(boolParam(env, 'absent', true)).toBe(true);
    expect(thrown(() => boolParam(env, 'maybe')).message).toBe('param maybe: expected true or false, got "maybe"');
  });

  it('reads a JSON param validated by a zod schema', () => {
    expect(jsonParam(env, 'good', cfgSchema)).toEqual({ hosts: ['a', 'b'] });
    expect(jsonParam(env, 'absent', cfgSchema, '{"hosts":[]}')).toEqual({ hosts: [] });
  });

  it('names the param and the JSON path of the first problem', () => {
    const error = thrown(() => jsonParam(env, 'cfg', cfgSchema));
    expect(error.code).toBe('E_PARAM');
    expect(error.message).toMatch(/^param cfg\.hosts\[1\]: .*expected string/);
  });

  it('names the param when its JSON does not parse', () => {
    expect(thrown(() => jsonParam(env, 'broken', cfgSchema)).message).toMatch(/^param broken: invalid JSON: /);
  });

  it('keeps the error on one line when the bad input spans lines', () => {
    const error = thrown(() => jsonParam(env, 'multiline', cfgSchema));
    expect(error.message).toMatch(/^param multiline: invalid JSON: /);
    expect(error.message).not.toMatch(/[\r\n]/);
    const keyed = thrown(() => jsonParam({ params: { k: '{"hosts":[],"a\\nb":1}' } }, 'k', cfgSchema));
    expect(keyed.message).toMatch(/^param k: .*a\\nb/);
    expect(keyed.message).not.toMatch(/[\r\n]/);
  });
});
