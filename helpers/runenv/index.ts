// The run environment of a Testground instance: parse it once, read params typed.
export { parseRunEnv, RUNENV_KEYS, type RunEnv, type RunEnvKey } from './runenv.ts';
export { stringParam, intParam, boolParam, sizeParam, jsonParam, parseJsonParam, jsonPath } from './getters.ts';
export { packParams, unpackParams } from './params.ts';
