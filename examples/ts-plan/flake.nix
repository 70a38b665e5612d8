{
  description = "ts-plan: a Testground plan in TypeScript that remote-runner places on remote hosts";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    remote-runner.url = "github:remote-runner/remote-runner";
    remote-runner.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { nixpkgs, remote-runner, ... }:
    remote-runner.lib.testgroundPlan {
      inherit nixpkgs;
      # One bundle of main.ts and its dependencies (from package-lock.json), and node.
      plan = pkgs: remote-runner.lib.tsPlan { inherit pkgs; src = ./.; };
    };
}
