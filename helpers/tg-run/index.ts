// Run a Testground plan locally the way local:exec does, with no daemon.
export { runPlan, type RunOptions, type RunResult } from './run.ts';
export { singleSpec, compositionSpec, parseDuration, type RunSpec, type GroupSpec, type Builder } from './spec.ts';
export { renderSummary, countLine, type InstanceResult } from './summary.ts';
export type { Outcome } from './outcomes.ts';
