// What a builder hands the run: the command every instance starts, and, for
// placing instances on remote hosts, the app for any system as a store path.
import type { Component } from '../../closure/job-description.ts';
import type { NixSystem } from '../../runners/runners.ts';

/** A built plan. */
export interface Artifact {
  /** What local:exec would start for each instance. */
  command: string;
  args: string[];
  /** Where it came from (a store path, a binary, the plan directory), for messages. */
  source: string;
  /** It is our runner with its own job description (a Nix artifact made by lib.testgroundPlan): instances place themselves. */
  placesItself: boolean;
  /** The app for `system` in the local Nix store, for placing instances on remote hosts. */
  appFor(system: NixSystem, signal?: AbortSignal): Promise<Component>;
}

/** What every builder gets. */
export interface BuildInput {
  planDir: string;
  plan: string;
  /** `[builders."<id>"]` of the manifest. */
  config: Record<string, unknown>;
  /** `bin_path` of the run config, when set. */
  binPath: string | undefined;
  /** A scratch directory for this run's build products. */
  workDir: string;
  signal: AbortSignal;
}

// A string setting of a builder's config, or `fallback`.
export function setting(config: Record<string, unknown>, key: string, fallback: string): string {
  const value = config[key];
  return typeof value === 'string' && value !== '' ? value : fallback;
}
