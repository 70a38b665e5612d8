# The instance's process (go/cmd/remote-runner: what local:exec starts for every
# instance, which hands the instance to the run's controller) for the Nix system
# `target`, built with Go on the build machine like the agent (nix/agent.nix):
# Go cross-compiles, so no builder of `target` is needed. A static binary with
# no references: its closure is itself.
{ runCommand
, go
, target
, version
  # The Go module (go/ of this repository).
, src ? builtins.path {
    name = "remote-runner-client-source";
    path = ../go;
    filter = path: type: type == "directory" || builtins.match ".*_test\\.go" (baseNameOf path) == null;
  }
}:
let
  platforms = {
    x86_64-linux = { GOOS = "linux"; GOARCH = "amd64"; };
    aarch64-linux = { GOOS = "linux"; GOARCH = "arm64"; };
    x86_64-darwin = { GOOS = "darwin"; GOARCH = "amd64"; };
    aarch64-darwin = { GOOS = "darwin"; GOARCH = "arm64"; };
  };
  platform = platforms.${target} or (throw "remote-runner: no instance process for ${target} (known: ${builtins.concatStringsSep ", " (builtins.attrNames platforms)})");
in
runCommand "remote-runner-client-${version}-${target}"
{
  nativeBuildInputs = [ go ];
  inherit (platform) GOOS GOARCH;
  CGO_ENABLED = "0";
  meta.mainProgram = "remote-runner";
} ''
  export HOME="$TMPDIR" GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go" GOPROXY=off GOWORK=off GOFLAGS=-trimpath
  mkdir -p "$out/bin"
  cd '${src}'
  go build -ldflags='-s -w' -o "$out/bin/remote-runner" ./cmd/remote-runner
''
