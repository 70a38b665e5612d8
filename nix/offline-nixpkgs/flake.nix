# Offline stand-in for nixpkgs: just the attributes this repository's flake
# uses, built from the host's tools. CI and scripts/nix-build use it through
#   nix build .#remote-runner --override-input nixpkgs path:<prepared copy>
# where the prepared copy (made by scripts/lib/nix-env.sh) adds host.json and
# prod-node-modules/ to these files. Never used with real nixpkgs.
{
  description = "Offline stand-in for the parts of nixpkgs used by the remote-runner flake";

  outputs = { self }: import ./default.nix { root = self.outPath; };
}
