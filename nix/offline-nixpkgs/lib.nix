# The few nixpkgs lib functions that the repository's flake uses.
let
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
in
{
  inherit genAttrs;
  importJSON = path: builtins.fromJSON (builtins.readFile path);
}
