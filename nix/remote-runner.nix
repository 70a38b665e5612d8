# What Testground runs: $out/bin/remote-runner (node on the package's
# bin/remote-runner.js --artifacts <this artifacts.json>) and
# $out/share/remote-runner/artifacts.json, which maps every supported system to
# its `plan` derivation:
#
#   {"version":1,"attr":"plan","systems":{"<system>":{"drvPath":…,"outPath":…},…}}
#
# Other systems' plans are referenced by their .drv only: the closure of this
# package holds their derivation closures (copy them to a host of that system
# and `nix-store --realise` them there) but none of their outputs. This
# system's plan output is in the closure through the wrapper.
{ runCommand
, runtimeShell
  # This system's plan package.
, plan
  # Every supported system's plan package: { <system> = plan; … }.
, plans
}:
let
  inherit (builtins) attrNames concatStringsSep toJSON;

  # drvPath keeps the .drv (not its outputs) as a dependency; outPath is text.
  systems = builtins.mapAttrs
    (_: p: {
      drvPath = builtins.unsafeDiscardOutputDependency p.drvPath;
      outPath = builtins.unsafeDiscardStringContext p.outPath;
    })
    plans;

  # Written by hand: toJSON turns any attribute set with an outPath into that
  # string.
  artifactsJson =
    let
      entry = name: ''${toJSON name}:{"drvPath":${toJSON systems.${name}.drvPath},"outPath":${toJSON systems.${name}.outPath}}'';
    in
    ''{"version":1,"attr":"plan","systems":{${concatStringsSep "," (map entry (attrNames systems))}}}'';
in
runCommand "remote-runner-${plan.version or "0"}"
{
  inherit artifactsJson;
  passthru = { inherit plan; };
  meta.mainProgram = "remote-runner";
} ''
  mkdir -p "$out/bin" "$out/share/remote-runner"
  printf '%s\n' "$artifactsJson" > "$out/share/remote-runner/artifacts.json"
  # The job description goes first: a later --artifacts from "$@" wins.
  printf '#!%s\nexec %s %s --artifacts %s "$@"\n' '${runtimeShell}' \
    '${plan.nodejs}/bin/node' '${plan}/lib/remote-runner/dist/remote-runner.mjs' \
    "$out/share/remote-runner/artifacts.json" > "$out/bin/remote-runner"
  chmod +x "$out/bin/remote-runner"
''
