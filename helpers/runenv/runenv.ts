// The run environment local:exec gives an instance, parsed and validated once.
import { z } from 'zod';
import { TgError } from '../shared/error.ts';
import { unpackParams } from './params.ts';

/** Every variable of the instance environment contract, in a stable order. */
export const RUNENV_KEYS = [
  'TEST_PLAN',
  'TEST_CASE',
  'TEST_RUN',
  'TEST_REPO',
  'TEST_BRANCH',
  'TEST_TAG',
  'TEST_GROUP_ID',
  'TEST_GROUP_INSTANCE_COUNT',
  'TEST_INSTANCE_COUNT',
  'TEST_INSTANCE_ROLE',
  'TEST_INSTANCE_PARAMS',
  'TEST_OUTPUTS_PATH',
  'TEST_TEMP_PATH',
  'TEST_SIDECAR',
  'TEST_START_TIME',
  'TEST_SUBNET',
  'TEST_CAPTURE_PROFILES',
  'TEST_DISABLE_METRICS',
  'SYNC_SERVICE_HOST',
  'SYNC_SERVICE_PORT',
  'INFLUXDB_URL',
] as const;

export type RunEnvKey = (typeof RUNENV_KEYS)[number];

const count = z.string().regex(/^\d+$/, 'expected a whole number').transform(Number);
const flag = z
  .enum(['true', 'false', 'TRUE', 'FALSE', 'True', 'False', '1', '0', 't', 'f', 'T', 'F', ''])
  .transform((v) => ['true', 'TRUE', 'True', '1', 't', 'T'].includes(v));
const rfc3339 = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, 'expected an RFC 3339 time')
  .transform((v) => new Date(v));
const cidr = z.string().regex(/^[0-9a-fA-F.:]+\/\d{1,3}$/, 'expected a CIDR such as 127.1.0.1/16');

const schema = z.object({
  TEST_PLAN: z.string().min(1, 'expected the plan name'),
  TEST_CASE: z.string().min(1, 'expected the test case name'),
  TEST_RUN: z.string().min(1, 'expected the run id'),
  TEST_REPO: z.string().default(''),
  TEST_BRANCH: z.string().default(''),
  TEST_TAG: z.string().default(''),
  TEST_GROUP_ID: z.string().min(1, 'expected the group id'),
  TEST_GROUP_INSTANCE_COUNT: count,
  TEST_INSTANCE_COUNT: count,
  TEST_INSTANCE_ROLE: z.string().default(''),
  TEST_INSTANCE_PARAMS: z.string().default(''),
  TEST_OUTPUTS_PATH: z.string().default(''),
  TEST_TEMP_PATH: z.string().default(''),
  TEST_SIDECAR: flag.default(false),
  TEST_START_TIME: rfc3339.optional(),
  TEST_SUBNET: cidr.optional(),
  TEST_CAPTURE_PROFILES: z.string().default(''),
  TEST_DISABLE_METRICS: flag.default(false),
  SYNC_SERVICE_HOST: z.string().min(1).default('testground-sync-service'),
  SYNC_SERVICE_PORT: z
    .string()
    .regex(/^\d{1,5}$/, 'expected a port number')
    .refine((v) => Number(v) <= 65535, 'expected a port number up to 65535')
    .default('5050')
    .transform(Number),
  INFLUXDB_URL: z.string().optional(),
});

/** The typed run environment of one instance. */
export interface RunEnv {
  plan: string;
  testCase: string;
  run: string;
  repo: string;
  branch: string;
  tag: string;
  group: string;
  groupInstanceCount: number;
  instanceCount: number;
  role: string;
  params: Record<string, string>;
  outputsPath: string;
  tempPath: string;
  sidecar: boolean;
  startTime: Date | undefined;
  subnet: string | undefined;
  captureProfiles: string;
  disableMetrics: boolean;
  syncService: { host: string; port: number; url: string };
  influxdbUrl: string | undefined;
  /** The contract's variables exactly as they were set, for passing on unchanged. */
  vars: Partial<Record<RunEnvKey, string>>;
}

// Parse and validate the instance environment; throws one E_RUNENV line naming the variable.
export function parseRunEnv(env: Record<string, string | undefined> = process.env): RunEnv {
  const vars: Partial<Record<RunEnvKey, string>> = {};
  for (const key of RUNENV_KEYS) {
    const value = env[key];
    if (value !== undefined) vars[key] = value;
  }
  const parsed = schema.safeParse(vars);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const got = key in vars ? JSON.stringify(vars[key as RunEnvKey]) : 'nothing';
    throw new TgError('E_RUNENV', `run environment: ${key}: ${issue.message} (got ${got})`, { cause: parsed.error });
  }
  const v = parsed.data;
  const host = v.SYNC_SERVICE_HOST;
  return {
    plan: v.TEST_PLAN,
    testCase: v.TEST_CASE,
    run: v.TEST_RUN,
    repo: v.TEST_REPO,
    branch: v.TEST_BRANCH,
    tag: v.TEST_TAG,
    group: v.TEST_GROUP_ID,
    groupInstanceCount: v.TEST_GROUP_INSTANCE_COUNT,
    instanceCount: v.TEST_INSTANCE_COUNT,
    role: v.TEST_INSTANCE_ROLE,
    params: unpackParams(v.TEST_INSTANCE_PARAMS),
    outputsPath: v.TEST_OUTPUTS_PATH,
    tempPath: v.TEST_TEMP_PATH,
    sidecar: v.TEST_SIDECAR,
    startTime: v.TEST_START_TIME,
    subnet: v.TEST_SUBNET,
    captureProfiles: v.TEST_CAPTURE_PROFILES,
    disableMetrics: v.TEST_DISABLE_METRICS,
    syncService: { host, port: v.SYNC_SERVICE_PORT, url: `ws://${host.includes(':') ? `[${host}]` : host}:${v.SYNC_SERVICE_PORT}` },
    influxdbUrl: v.INFLUXDB_URL,
    vars,
  };
}
