# root: this stand-in's source as a store path string. In a copy prepared by
# scripts/lib/nix-env.sh it also holds
#   host.json          {"system", "nodePath", "nodeVersion", "nodeSha256",
#                       "goRoot", "goVersion", "goCache"}
#   prod-node-modules/ {node_modules/, package-lock.json} from
#                      `npm ci --omit=dev --ignore-scripts`
# Derivations for the host's system are built from host tools; those for the
# other systems evaluate (so their .drv files can be instantiated and shipped)
# but refuse to build.
{ root }:
let
  lib = import ./lib.nix;

  systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];

  hostFile = root + "/host.json";
  host = if builtins.pathExists hostFile then lib.importJSON hostFile else null;
  notPrepared = what: throw ''
    offline nixpkgs stand-in: ${what} needs the prepared copy of nix/offline-nixpkgs
    (host.json and prod-node-modules/); build with scripts/nix-build instead.'';

  prepared = root + "/prod-node-modules";

  # The packages of a package-lock.json, reduced to what identifies them.
  lockFingerprint = lock:
    builtins.mapAttrs (_: m: { version = m.version or null; integrity = m.integrity or null; })
      (builtins.removeAttrs (lock.packages or { }) [ "" ]);

  pkgsFor = system:
    let
      buildable = host != null && host.system == system;

      # runCommand name env buildCommand, run by /bin/sh with the host's
      # /usr/bin and /bin (and nativeBuildInputs' bin/) on PATH.
      runCommand = name: env: buildCommand:
        let
          passthru = env.passthru or { };
          inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
          drv = derivation (builtins.removeAttrs env [ "passthru" "meta" "nativeBuildInputs" "buildInputs" ] // {
            inherit name system buildCommand;
            builder = "/bin/sh";
            args = [ "-ec" ''eval "$buildCommand"'' ];
            PATH = builtins.concatStringsSep ":" (map (d: "${d}/bin") inputs ++ [ "/usr/bin" "/bin" ]);
          });
        in
        drv // passthru // { inherit passthru; meta = env.meta or { }; };

      # A derivation for a system this machine cannot build for: it can be
      # instantiated and copied to a machine of that system, not built here.
      unbuildable = name: runCommand name { } ''
        echo "the offline nixpkgs stand-in cannot build ${name} for ${system}" >&2
        exit 1
      '';

      nodeVersion = if host != null then host.nodeVersion else "20";

      nodejs_20 =
        if buildable then
          runCommand "nodejs-${nodeVersion}"
            {
              inherit (host) nodePath nodeSha256;
              passthru.version = nodeVersion;
            } ''
            mkdir -p "$out/bin"
            cp "$nodePath" "$out/bin/node"
            echo "$nodeSha256  $out/bin/node" | sha256sum -c --quiet -
          ''
        else if host == null then
          notPrepared "nodejs_20"
        else
          unbuildable "nodejs-${nodeVersion}";

      # importNpmLock.buildNodeModules with nixpkgs' signature. For this
      # repository's lock its output links to the production node_modules
      # prepared from it (in this stand-in's source, so in the closure).
      buildNodeModules =
        { nodejs
        , derivationArgs ? { }
        , npmRoot ? null
        , package ? lib.importJSON (npmRoot + "/package.json")
        , packageLock ? lib.importJSON (npmRoot + "/package-lock.json")
        }:
        let
          name = "${derivationArgs.pname or "node-modules"}-${derivationArgs.version or "0.0.0"}";
          preparedLock = lib.importJSON (prepared + "/package-lock.json");
          sameLock = lockFingerprint preparedLock == lockFingerprint packageLock;
        in
        if buildable && sameLock then
          runCommand name { } ''
            mkdir -p "$out"
            ln -s '${prepared}/node_modules' "$out/node_modules"
            cp '${prepared}/package-lock.json' "$out/package-lock.json"
          ''
        else if buildable && npmRoot != null then
          # Another project's lock: this machine's npm installs it (the npm
          # registry stands in for nixpkgs' fetchers).
          runCommand name { inherit npmRoot; } ''
            export HOME="$TMPDIR"
            cp "$npmRoot/package.json" "$npmRoot/package-lock.json" "$TMPDIR/"
            cd "$TMPDIR"
            npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2
            mkdir -p "$out"
            mv node_modules package-lock.json "$out/"
          ''
        else if buildable then
          throw ''
            offline nixpkgs stand-in: the prepared node_modules come from another
            package-lock.json than the flake's; run scripts/nix-build again.''
        else if host == null then
          notPrepared "importNpmLock.buildNodeModules"
        else
          unbuildable name;

      # The host's Go toolchain behind a wrapper; builds share the host's build
      # cache (the stand-in is impure by design: same inputs, same binaries).
      go =
        if buildable && (host.goRoot or "") != "" then
          runCommand "go-${host.goVersion}"
            {
              inherit (host) goRoot goCache;
              passthru.version = host.goVersion;
            } ''
            mkdir -p "$out/bin"
            printf '#!/bin/sh\nexport GOROOT=%s GOCACHE=%s GOTOOLCHAIN=local\nexec %s/bin/go "$@"\n' "$goRoot" "$goCache" "$goRoot" > "$out/bin/go"
            chmod +x "$out/bin/go"
          ''
        else if host == null then
          notPrepared "go"
        else
          unbuildable "go";

      # buildGoModule with nixpkgs' common arguments, offline: modules come from
      # the source's vendor/ (vendorHash = null, after `go mod vendor`).
      buildGoModule =
        { pname
        , version
        , src
        , vendorHash ? null
        , subPackages ? [ "." ]
        , ldflags ? [ ]
        , tags ? [ ]
        , env ? { }
        , meta ? { }
        , passthru ? { }
        , ...
        }@args:
        let
          cgo = args.CGO_ENABLED or env.CGO_ENABLED or "1";
        in
        runCommand "${pname}-${version}"
          (env // {
            nativeBuildInputs = [ go ];
            CGO_ENABLED = toString cgo;
            passthru = passthru // { inherit pname version; };
            meta = meta;
            inherit pname version;
          }) ''
          export HOME="$TMPDIR" GOPATH="$TMPDIR/go" GOPROXY=off GOWORK=off GOFLAGS=-trimpath
          cp -R '${src}/.' "$TMPDIR/src"
          chmod -R u+w "$TMPDIR/src"
          cd "$TMPDIR/src"
          if grep -q '^require' go.mod && [ ! -d vendor ]; then
            echo "offline nixpkgs stand-in: ${pname} needs its modules in vendor/ (run go mod vendor; vendorHash = null)" >&2
            exit 1
          fi
          if [ -d vendor ]; then export GOFLAGS="$GOFLAGS -mod=vendor"; fi
          mkdir -p "$out/bin"
          for pkg in ${builtins.concatStringsSep " " subPackages}; do
            go build ${if tags == [ ] then "" else "-tags ${builtins.concatStringsSep "," tags}"} -ldflags '${builtins.concatStringsSep " " ldflags}' -o "$out/bin/" "./$pkg"
          done
        '';
    in
    {
      inherit lib system runCommand nodejs_20 go buildGoModule;
      stdenv.hostPlatform = { inherit system; };
      nodejs = nodejs_20;
      runtimeShell = "/bin/sh";
      importNpmLock = { inherit buildNodeModules; };
    };
in
{
  inherit lib;
  legacyPackages = lib.genAttrs systems pkgsFor;
}
