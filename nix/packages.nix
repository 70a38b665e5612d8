# The flake's packages for one system.
#   pkgs:  nixpkgs (or the offline stand-in) for this system
#   plans: { <system> = plan; … } for every supported system
{ pkgs, plans, npmRegistry ? null }:
rec {
  plan = import ./package.nix {
    inherit (pkgs) runCommand nodejs_20 importNpmLock runtimeShell;
    inherit npmRegistry;
  };
  remote-runner = import ./remote-runner.nix {
    inherit (pkgs) runCommand runtimeShell;
    inherit plan plans;
  };
  default = remote-runner;
}
