{
  description = "remote-runner: a Testground plan and runner that runs test instances on remote machines";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      # Base URL of the npm registry for package-lock.json entries that have no
      # "resolved" URL (see nix/package.nix); null: such entries are an error.
      npmRegistry = null;
    in
    {
      # packages.<system>.plan:          the app closure ($out/bin/plan)
      # packages.<system>.remote-runner: $out/bin/remote-runner and
      #                                  $out/share/remote-runner/artifacts.json
      packages = nixpkgs.lib.genAttrs systems (system:
        import ./nix/packages.nix {
          pkgs = nixpkgs.legacyPackages.${system};
          plans = nixpkgs.lib.genAttrs systems (s: self.packages.${s}.plan);
          inherit npmRegistry;
        });
    };
}
