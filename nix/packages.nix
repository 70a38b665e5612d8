# The flake's packages for one system.
#   tools          node and this package: remote-runner, tg-run, sync-service,
#                  choose-server, inventory (each bin bundled under dist/)
#   remote-agent   the agent for this system (lib.agent builds it for any)
#   plan           this repository's own plan (plans/remote-runner) as a bundle and node
#   remote-runner  that plan as a Testground artifact (lib.testgroundArtifact)
{ self, lib, system, pkgs, npmRegistry ? null }:
rec {
  tools = import ./package.nix {
    inherit (pkgs) runCommand nodejs_20 importNpmLock runtimeShell;
    inherit npmRegistry;
  };
  remote-agent = lib.agent { inherit system; };
  plan = import ./ts-plan.nix {
    inherit (pkgs) runCommand runtimeShell;
    inherit tools;
    inherit (tools) nodejs version;
    nodeModules = tools.nodeModules;
    src = tools.src;
    entry = "plans/remote-runner/index.ts";
    name = "plan";
  };
  remote-runner = lib.testgroundArtifact {
    inherit system;
    plans = lib.forSystems (s: self.packages.${s}.plan);
    name = "remote-runner";
  };
  default = remote-runner;
}
