# A TypeScript plan as an app: one ES module bundle (every dependency inside, made
# by helpers/shared/bundle-ts.ts with esbuild) and node, so a remote host gets the
# bundle and node's closure, not node_modules.
#
#   $out/lib/<name>.mjs    the bundle
#   $out/bin/<name>        node on it
{ runCommand
, runtimeShell
  # node, and this package (lib/remote-runner with its node_modules: tsx and esbuild).
, nodejs
, tools
  # The plan's source, its entry (relative to src) and a node_modules for it.
, src
, entry
, name
, nodeModules
, version ? "0"
}:
runCommand "${name}-${version}"
{
  meta.mainProgram = name;
} ''
  mkdir -p "$out/bin" "$out/lib" build
  cp -R '${src}/.' build/
  chmod -R u+w build
  rm -rf build/node_modules
  # A copy, not a link: esbuild names modules by their real paths, and a store
  # path in the bundle would pull node_modules into the app's closure.
  cp -RL '${nodeModules}/node_modules' build/node_modules
  chmod -R u+w build/node_modules
  cd build
  '${nodejs}/bin/node' --import '${tools}/lib/remote-runner/node_modules/tsx/dist/loader.mjs' --input-type=module \
    -e "const { bundleTs } = await import('${tools}/lib/remote-runner/helpers/shared/bundle-ts.ts'); await bundleTs(process.argv[1], process.argv[2], process.cwd());" \
    '${entry}' "$out/lib/${name}.mjs"
  printf '#!%s\nexec %s %s "$@"\n' '${runtimeShell}' '${nodejs}/bin/node' "$out/lib/${name}.mjs" > "$out/bin/${name}"
  chmod +x "$out/bin/${name}"
''
