// A complete instance environment, as Testground's local:exec hands it to an instance.
import type { RunEnvKey } from '../../helpers/runenv/index.ts';

/** The contract's variables, every one set; values are what local:exec would give. */
export function contract(overrides: Partial<Record<RunEnvKey, string>> = {}): Record<RunEnvKey, string> {
  return {
    TEST_PLAN: 'remote-runner',
    TEST_CASE: 'ok',
    TEST_RUN: 'c0ffee',
    TEST_REPO: 'github.com/example/remote-runner',
    TEST_BRANCH: 'main',
    TEST_TAG: 'v1',
    TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: '1',
    TEST_INSTANCE_COUNT: '1',
    TEST_INSTANCE_ROLE: '',
    TEST_INSTANCE_PARAMS: '',
    TEST_OUTPUTS_PATH: '/tmp/outputs',
    TEST_TEMP_PATH: '/tmp/temp',
    TEST_SIDECAR: 'false',
    TEST_START_TIME: '2024-05-06T07:08:09Z',
    TEST_SUBNET: '127.1.0.1/16',
    TEST_CAPTURE_PROFILES: '',
    TEST_DISABLE_METRICS: 'true',
    SYNC_SERVICE_HOST: '127.0.0.1',
    SYNC_SERVICE_PORT: '5050',
    INFLUXDB_URL: 'http://127.0.0.1:8086',
    ...overrides,
  };
}

/** The whole environment of an instance: the contract and PATH, nothing else. */
export function instanceEnv(overrides: Partial<Record<RunEnvKey, string>> = {}): Record<string, string> {
  return { ...contract(overrides), PATH: process.env.PATH ?? '/usr/bin:/bin' };
}

/** Values a shell or a naive parser would mangle; none holds `|`, which params cannot carry. */
export const awkwardValues: Record<string, string> = {
  equals: 'a=b=c',
  spaces: '  two  spaces  ',
  quotes: `it's "quoted"`,
  subshell: '$(touch /tmp/pwned) ${HOME}',
  backticks: '`id`',
  newlines: 'line one\nline two\r\n',
  unicode: 'héllo wörld — 日本語 🚀',
  json: '{"k":[1,"v=w"]}',
  empty: '',
};
