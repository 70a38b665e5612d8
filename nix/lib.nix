# The flake's `lib`: turn any plan's derivation into the artifact Testground's
# nix:generic builder runs, `bin/remote-runner` plus its job description
# (share/remote-runner/job.json), which names for each system the app (its
# derivation, output and entry program) and the remote agent.
#
#   remote-runner.lib.testgroundPlan { plan = pkgs: <derivation>; }
#     -> { packages.<system>.default = <artifact>; packages.<system>.plan = <app>; }
#
#   remote-runner.lib.testgroundArtifact { system; plans = { <system> = <drv>; … }; }
#     -> the artifact for a controller of `system`
{ self, nixpkgs }:
let
  inherit (builtins) attrNames concatStringsSep listToAttrs mapAttrs toJSON unsafeDiscardOutputDependency unsafeDiscardStringContext;

  allSystems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
  ourNixpkgs = nixpkgs;
  genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);
  version = (builtins.fromJSON (builtins.readFile ../package.json)).version;

  # The program of a derivation: meta.mainProgram, else its pname or name.
  mainProgram = drv: "bin/${drv.meta.mainProgram or drv.pname or (builtins.parseDrvName drv.name).name}";

  # One component of the job description: on the controller's own system its
  # output is a dependency (built with the artifact); elsewhere only its .drv is.
  component = local: drv: entry: {
    drvPath = unsafeDiscardOutputDependency drv.drvPath;
    outPath = if local then drv.outPath else unsafeDiscardStringContext drv.outPath;
    inherit entry;
  };
in
rec {
  systems = allSystems;

  # { <system> = f <system>; … } for every supported system.
  forSystems = genAttrs allSystems;

  # The remote agent for `target`, built on `system`.
  agent = { system, target ? system }: import ./go-program.nix {
    inherit (ourNixpkgs.legacyPackages.${system}) runCommand go;
    inherit target version;
    pname = "remote-agent";
    program = "remote-agent";
    what = "remote agent";
  };

  # The process Testground starts for every instance (go/cmd/remote-runner), for `system`.
  instanceProcess = system: import ./go-program.nix {
    inherit (ourNixpkgs.legacyPackages.${system}) runCommand go;
    target = system;
    inherit version;
    pname = "remote-runner-client";
    program = "remote-runner";
    what = "instance process";
  };

  # The artifact for a controller of `system`. `plans` maps systems to the plan's
  # derivation (or is a function from a system to it); `entry` is the program in
  # it (default: bin/<meta.mainProgram or pname>).
  testgroundArtifact = { system, plans, entry ? null, name ? null }:
    let
      pkgs = ourNixpkgs.legacyPackages.${system};
      byName = if builtins.isFunction plans then forSystems plans else plans;
      anyPlan = byName.${system} or (byName.${builtins.head (attrNames byName)});
      planName = if name != null then name else (anyPlan.pname or (builtins.parseDrvName anyPlan.name).name);
      tools = self.packages.${system}.tools;
      client = instanceProcess system;
      job = mapAttrs
        (target: drv: {
          app = component (target == system) drv (if entry != null then entry else mainProgram drv);
          agent = component (target == system) (agent { inherit system target; }) "bin/remote-agent";
        })
        byName;
      # Written by hand: toJSON would turn an attribute set with an outPath into that string.
      componentJson = c: ''{"drvPath":${toJSON c.drvPath},"outPath":${toJSON c.outPath},"entry":${toJSON c.entry}}'';
      systemJson = target: ''${toJSON target}:{"app":${componentJson job.${target}.app},"agent":${componentJson job.${target}.agent}}'';
      jobJson = ''{"version":2,"plan":${toJSON planName},"systems":{${concatStringsSep "," (map systemJson (attrNames job))}}}'';
    in
    pkgs.runCommand "${planName}-testground-${version}"
      {
        inherit jobJson;
        passthru = { inherit job tools client; plans = byName; };
        meta.mainProgram = "remote-runner";
      } ''
      mkdir -p "$out/bin" "$out/share/remote-runner"
      printf '%s\n' "$jobJson" > "$out/share/remote-runner/job.json"
      # The instance's process finds (or starts) the run's controller; the job
      # description goes first: a later --job in "$@" wins.
      printf '#!%s\nexec %s --controller %s --job %s "$@"\n' '${pkgs.runtimeShell}' \
        '${client}/bin/remote-runner' \
        "'${tools.nodejs}/bin/node ${tools}/lib/remote-runner/dist/remote-runner-controller.mjs'" \
        "$out/share/remote-runner/job.json" > "$out/bin/remote-runner"
      chmod +x "$out/bin/remote-runner"
    '';

  # A TypeScript plan as an app: one ES module bundle of `entry` (default: the
  # `main` of its package.json) with every dependency inside, and node. Its
  # node_modules come from its package-lock.json (which needs "resolved" URLs).
  tsPlan =
    { pkgs
    , src
    , packageJson ? builtins.fromJSON (builtins.readFile (src + "/package.json"))
    , name ? packageJson.name
    , entry ? packageJson.main or "main.ts"
    , nodejs ? pkgs.nodejs_20
    , nodeModules ? pkgs.importNpmLock.buildNodeModules { npmRoot = src; inherit nodejs; }
    }:
    import ./ts-plan.nix {
      inherit (pkgs) runCommand runtimeShell;
      inherit nodejs src entry name nodeModules;
      tools = self.packages.${pkgs.stdenv.hostPlatform.system or pkgs.system}.tools;
      version = packageJson.version or "0";
    };

  # A plan flake's packages: `plan` is a function from nixpkgs' package set to the
  # plan's derivation; every system gets `default` (the artifact) and `plan`.
  testgroundPlan = { plan, nixpkgs ? ourNixpkgs, systems ? allSystems, entry ? null, name ? null }:
    let
      planFor = system: plan nixpkgs.legacyPackages.${system};
      plans = genAttrs systems planFor;
    in
    {
      packages = genAttrs systems (system: {
        default = testgroundArtifact { inherit system plans entry name; };
        plan = plans.${system};
      });
    };
}
