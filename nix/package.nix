# The app closure: Node, this package's code (bin/, helpers/, plans/,
# package.json, manifest.toml) and its production node_modules.
#
#   $out/lib/remote-runner/       the package, node_modules included
#   $out/bin/<name>               node on lib/remote-runner/bin/<name>.js, for
#                                 each bin/*.js entry; always $out/bin/plan
#
# The same code runs with real nixpkgs (nodejs_20, importNpmLock) and with the
# offline stand-in in nix/offline-nixpkgs.
{ runCommand
, nodejs_20
, importNpmLock
, runtimeShell
  # The repository root (the flake's source).
, root ? ../.
  # Base URL of an npm registry. Used only for packages that package-lock.json
  # lists without a "resolved" URL (npm's omit-lockfile-registry-resolved):
  # importNpmLock needs a URL to fetch each of them.
, npmRegistry ? null
}:
let
  nodejs = nodejs_20;

  rootString = toString root;
  readJSON = file:
    if builtins.pathExists (root + "/${file}") then builtins.fromJSON (builtins.readFile (root + "/${file}"))
    else throw "remote-runner: ${file} is missing from the flake's source (is it tracked by git?)";

  packageJson = readJSON "package.json";
  packageLock = readJSON "package-lock.json";
  version = packageJson.version or "0.0.0";

  hasSuffix = suffix: s:
    let
      n = builtins.stringLength s;
      k = builtins.stringLength suffix;
    in
    n >= k && builtins.substring (n - k) k s == suffix;

  # What goes into the package; node_modules, caches, results and tests stay out.
  packageEntries = [ "bin" "go" "helpers" "plans" "package.json" "manifest.toml" "tsconfig.json" ];
  src = builtins.path {
    name = "remote-runner-source";
    path = root;
    filter = path: type:
      let
        relative = builtins.substring (builtins.stringLength rootString + 1) (-1) (toString path);
        top = builtins.head (builtins.split "/" relative);
        base = baseNameOf (toString path);
      in
      builtins.elem top packageEntries
      && !(builtins.elem base [ "node_modules" ".cache" "result" ])
      && !(hasSuffix ".test.ts" base || hasSuffix ".spec.ts" base);
  };

  # package-lock.json with a tarball URL for every registry package.
  withResolved = path: module:
    if module ? resolved || !(module ? version) || module.link or false || path == "" then module
    else
      let
        name = builtins.head (builtins.match ".*node_modules/(.*)" path);
        basename = builtins.elemAt (builtins.match "(@[^/]+/)?(.*)" name) 1;
      in
      module // {
        resolved =
          if npmRegistry == null then
            throw ''
              remote-runner: package-lock.json has no "resolved" URL for ${path}.
              Regenerate it with URLs (npm install --package-lock-only with
              omit-lockfile-registry-resolved=false) or set npmRegistry in flake.nix.''
          else "${npmRegistry}/${name}/-/${basename}-${module.version}.tgz";
      };
  lockForNix = packageLock // {
    name = "remote-runner";
    packages = builtins.mapAttrs withResolved packageLock.packages
      // { "" = (packageLock.packages."" or { }) // { name = "remote-runner"; }; };
  };

  # Only what npm needs: edits to scripts or exports do not rebuild node_modules.
  # The name must be a valid store path name ("@" and "/" are not).
  packageForNix = { name = "remote-runner"; inherit version; }
    // builtins.intersectAttrs
      { dependencies = null; devDependencies = null; optionalDependencies = null; peerDependencies = null; overrides = null; }
      packageJson;

  nodeModules = importNpmLock.buildNodeModules {
    inherit nodejs;
    npmRoot = root;
    package = packageForNix;
    packageLock = lockForNix;
    derivationArgs = {
      pname = "remote-runner-node-modules";
      inherit version;
      npmInstallFlags = [ "--omit=dev" ];
      npmRebuildFlags = [ "--ignore-scripts" ];
    };
  };
in
runCommand "remote-runner-plan-${version}"
{
  passthru = { inherit nodejs nodeModules src version; };
  meta.mainProgram = "plan";
} ''
  pkg="$out/lib/remote-runner"
  mkdir -p "$out/bin" "$pkg"
  cp -R '${src}/.' "$pkg/"
  chmod -R u+w "$pkg"
  ln -s '${nodeModules}/node_modules' "$pkg/node_modules"
  # Each bin as one ES module, so it starts without compiling TypeScript.
  '${nodejs}/bin/node' '${./bundle.mjs}' "$pkg"

  wrap() {
    printf '#!%s\nexec %s %s "$@"\n' '${runtimeShell}' '${nodejs}/bin/node' "$2" > "$out/bin/$1"
    chmod +x "$out/bin/$1"
  }
  for entry in "$pkg"/bin/*.js; do
    [ -e "$entry" ] || continue
    name="$(basename "$entry" .js)"
    case "$name" in _*) continue ;; esac
    if [ -e "$pkg/dist/$name.mjs" ]; then wrap "$name" "$pkg/dist/$name.mjs"; else wrap "$name" "$entry"; fi
  done
  [ -e "$out/bin/plan" ] || wrap plan "$pkg/bin/plan.js"
''
