// The public API of @remote-runner/plan: what a test plan, or a tool built on
// this one, imports. Each subpath (`/runenv`, `/sync-service`, …) has more.
export { parseRunEnv, stringParam, intParam, boolParam, jsonParam, type RunEnv } from './runenv/index.ts';
export { startSyncService, SyncClient, runKeys, type SyncService, type SyncServiceOptions, type RunScope } from './sync-service/index.ts';
export { chooseServer, parseRunners, SYSTEMS, type Choice, type Runner, type NixSystem } from './choose-server/index.ts';
export { runPlan, singleSpec, compositionSpec, renderSummary, type RunSpec, type RunOptions, type RunResult, type InstanceResult, type Outcome } from './tg-run/index.ts';
export { loadJobDescription, type JobDescription } from './closure/job-description.ts';
export { TgError, type ErrorCode } from './shared/error.ts';
