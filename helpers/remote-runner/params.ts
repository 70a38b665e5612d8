// The params of a run that the runner reads, besides the runner list itself.

/** How many hosts are copied to (or built on) at once across the run. */
export const MAX_COPIES_PARAM = 'remote-runners-max-concurrent-copy';
export const DEFAULT_MAX_COPIES = 4;

/** The most bytes of outputs one instance brings home from a remote host. */
export const MAX_OUTPUTS_PARAM = 'remote-runners-max-outputs-bytes';

/** Whether hosts that hold the job send it on to the next ones (docs/fan-out.md). */
export const FAN_OUT_PARAM = 'remote-runners-fan-out';
