// Choose the host an instance runs on from the `remote-runners` param.
export { chooseServer, pickIndex, runnerParams, CHOOSE_STATE, type Choice } from './choose.ts';
export { parseRunners, localSystem, runnersSchema, SYSTEMS, RUNNERS_PARAM, OVERFLOW_PARAM, type Runner, type NixSystem, type Overflow } from './runners.ts';
