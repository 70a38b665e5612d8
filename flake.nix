{
  description = "remote-runner: run Testground test plans on remote hosts over SSH, shipping Nix closures";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      lib = import ./nix/lib.nix { inherit self nixpkgs; };
      # Base URL of the npm registry for package-lock.json entries that have no
      # "resolved" URL (see nix/package.nix).
      npmRegistry = "https://registry.npmjs.org";
    in
    {
      # lib.testgroundPlan, lib.testgroundArtifact, lib.agent: see nix/lib.nix.
      inherit lib;

      packages = lib.forSystems (system: import ./nix/packages.nix {
        inherit self lib system npmRegistry;
        pkgs = nixpkgs.legacyPackages.${system};
      });

      templates = {
        go-plan = {
          path = ./examples/go-plan;
          description = "A Testground plan in Go (sdk-go) that remote-runner places on remote hosts";
        };
        ts-plan = {
          path = ./examples/ts-plan;
          description = "A Testground plan in TypeScript (@testground/sdk) that remote-runner places on remote hosts";
        };
      };
    };
}
