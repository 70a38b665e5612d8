// Choose the host an instance runs on from the `remote-runners` param.
export {
  chooseServer,
  pickIndex,
  runnerParams,
  liveParams,
  liveRunners,
  CHOOSE_STATE,
  LIVE_ONLY_PARAM,
  CHECK_TIMEOUT_PARAM,
  type Choice,
  type RunnerProbe,
} from './choose.ts';
export { parseRunners, readRunnersFile, localSystem, runnersSchema, SYSTEMS, RUNNERS_PARAM, OVERFLOW_PARAM, type Runner, type NixSystem, type Overflow } from '../runners/runners.ts';
