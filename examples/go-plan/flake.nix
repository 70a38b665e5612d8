{
  description = "go-plan: a Testground plan in Go that remote-runner places on remote hosts";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    remote-runner.url = "github:remote-runner/remote-runner";
    remote-runner.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { nixpkgs, remote-runner, ... }:
    remote-runner.lib.testgroundPlan {
      inherit nixpkgs;
      plan = pkgs: pkgs.buildGoModule {
        pname = "go-plan";
        version = "0.1.0";
        src = ./.;
        vendorHash = null; # modules from vendor/ (go mod vendor), or put their hash here
        env.CGO_ENABLED = "0"; # a static binary is its own closure
      };
    };
}
