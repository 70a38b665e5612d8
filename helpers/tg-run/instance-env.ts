// The environment local:exec gives an instance: the run environment contract
// (TEST_*, SYNC_SERVICE_*, INFLUXDB_URL) and PATH, nothing else.
import { packParams } from '../runenv/params.ts';
import type { RunEnvKey } from '../runenv/runenv.ts';
import type { GroupSpec, RunSpec } from './spec.ts';

/** What differs from one instance to the next. */
export interface InstancePlace {
  group: GroupSpec;
  total: number;
  outputsPath: string;
  tempPath: string;
  startTime: string;
  sync: { port: number };
  influxdbUrl?: string | undefined;
}

// The environment of one instance.
export function instanceEnv(spec: RunSpec, p: InstancePlace): Record<string, string> {
  const env: Partial<Record<RunEnvKey | 'PATH', string>> = {
    TEST_PLAN: spec.plan,
    TEST_CASE: spec.testCase,
    TEST_RUN: spec.runId,
    TEST_REPO: '',
    TEST_BRANCH: '',
    TEST_TAG: '',
    TEST_GROUP_ID: p.group.id,
    TEST_GROUP_INSTANCE_COUNT: String(p.group.instances),
    TEST_INSTANCE_COUNT: String(p.total),
    TEST_INSTANCE_ROLE: '',
    TEST_INSTANCE_PARAMS: packParams(p.group.params),
    TEST_OUTPUTS_PATH: p.outputsPath,
    TEST_TEMP_PATH: p.tempPath,
    TEST_SIDECAR: 'false',
    TEST_START_TIME: p.startTime,
    TEST_SUBNET: '127.1.0.0/16',
    TEST_CAPTURE_PROFILES: '',
    TEST_DISABLE_METRICS: 'false',
    SYNC_SERVICE_HOST: '127.0.0.1',
    SYNC_SERVICE_PORT: String(p.sync.port),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  };
  if (p.influxdbUrl) env.INFLUXDB_URL = p.influxdbUrl;
  return env as Record<string, string>;
}
