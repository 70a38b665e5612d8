# One program of the Go module (go/cmd/<program>) for the Nix system `target`,
# built with Go on the build machine: Go cross-compiles, so no builder of
# `target` is needed. A static binary with no references: its closure is itself.
# The remote agent (go/cmd/remote-agent) and the instance's process
# (go/cmd/remote-runner, what local:exec starts for every instance) are built so.
{ runCommand
, go
, target
, version
  # The derivation's name, before the version and the target.
, pname
  # The directory below go/cmd, and the name of the binary in $out/bin.
, program
  # What the program is, for the error about an unknown target.
, what
  # The Go module (go/ of this repository).
, src ? builtins.path {
    name = "remote-runner-go-source";
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
  platform = platforms.${target} or (throw "remote-runner: no ${what} for ${target} (known: ${builtins.concatStringsSep ", " (builtins.attrNames platforms)})");
in
runCommand "${pname}-${version}-${target}"
{
  nativeBuildInputs = [ go ];
  inherit (platform) GOOS GOARCH;
  CGO_ENABLED = "0";
  meta.mainProgram = program;
} ''
  export HOME="$TMPDIR" GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go" GOPROXY=off GOWORK=off GOFLAGS=-trimpath
  mkdir -p "$out/bin"
  cd '${src}'
  go build -ldflags='-s -w' -o "$out/bin/${program}" ./cmd/${program}
''
