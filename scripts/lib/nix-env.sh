# shellcheck shell=bash
# Nix setup shared by this repository's scripts and tests. Source it:
#
#   . scripts/lib/nix-env.sh
#
# It points Nix at nix/nix.conf (the one place for the Nix configuration:
# flakes on, no build users, no substituters, no sandbox) and defines
#   nix_env_ensure_nix         install Debian's nix-bin when nix is missing
#   nix_env_offline_nixpkgs    prepare the offline nixpkgs stand-in and print
#                              its store path (for --override-input nixpkgs)
#   nix_env_offline_args       print, on one line, the `nix build` arguments
#                              that build this flake offline with it
# Logs go to stderr.

NIX_ENV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
NIX_ENV_CACHE="$NIX_ENV_ROOT/.cache"
export NIX_USER_CONF_FILES="$NIX_ENV_ROOT/nix/nix.conf"
# Nix keeps its fetcher and evaluation caches under $XDG_CACHE_HOME or ~/.cache.
if [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
  export XDG_CACHE_HOME="$NIX_ENV_CACHE/xdg"
fi

nix_env_log() { printf 'nix-env: %s\n' "$*" >&2; }

nix_env_ensure_nix() {
  if command -v nix >/dev/null 2>&1 && command -v nix-store >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    nix_env_log "nix is not installed; install Nix (Debian: apt-get install nix-bin)"
    return 1
  fi
  nix_env_log "installing Debian's nix-bin"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q nix-bin >&2 || { apt-get update -q >&2 && apt-get install -y -q nix-bin >&2; }
}

nix_env_sha256() { sha256sum "$@" | cut -d' ' -f1; }

# Production node_modules for package-lock.json, in .cache/prod-node-modules/
# (node_modules/ plus the package-lock.json it was made from); redone only
# when package-lock.json or node's version changes.
nix_env_prod_node_modules() {
  local dir="$NIX_ENV_CACHE/prod-node-modules" key tmp
  key="$(nix_env_sha256 "$NIX_ENV_ROOT/package-lock.json") $(node --version)"
  if [ -f "$dir/key" ] && [ "$(cat "$dir/key")" = "$key" ] && [ -d "$dir/node_modules" ]; then
    return 0
  fi
  nix_env_log "installing production node_modules into .cache/prod-node-modules"
  tmp="$dir.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/work"
  cp "$NIX_ENV_ROOT/package.json" "$NIX_ENV_ROOT/package-lock.json" "$tmp/work/"
  cp "$NIX_ENV_ROOT/package-lock.json" "$tmp/package-lock.json"
  local npm_flags=(--omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
  if ! (cd "$tmp/work" && npm ci "${npm_flags[@]}" >"$tmp/npm-ci.log" 2>&1); then
    # npm ci refuses a package-lock.json out of step with package.json; npm
    # install then fills the gaps in this private copy of the lock.
    nix_env_log "npm ci failed: $(grep '^npm error [^ ]' "$tmp/npm-ci.log" | grep -v '^npm error code ' | head -n2 | tr '\n' ' ')"
    nix_env_log "installing with npm install from a copy of package-lock.json instead"
    (cd "$tmp/work" && rm -rf node_modules && npm install "${npm_flags[@]}" >&2) || return 1
  fi
  rm -f "$tmp/npm-ci.log"
  mv "$tmp/work/node_modules" "$tmp/node_modules"
  rm -rf "$tmp/work"
  printf '%s\n' "$key" > "$tmp/key"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# host.json for the stand-in: this machine's system and node.
nix_env_host_json() {
  local node system version sha stat_key cache="$NIX_ENV_CACHE/nix-offline/node.sha256"
  node="$(readlink -f "$(command -v node)")"
  case "$(uname -m)" in
    x86_64) system=x86_64-linux ;;
    aarch64 | arm64) system=aarch64-linux ;;
    *) nix_env_log "unsupported machine $(uname -m)"; return 1 ;;
  esac
  version="$("$node" --version)"
  version="${version#v}"
  stat_key="$node $(stat -c '%s %Y %i' "$node")"
  if [ -f "$cache" ] && [ "$(head -n1 "$cache")" = "$stat_key" ]; then
    sha="$(sed -n 2p "$cache")"
  else
    sha="$(nix_env_sha256 "$node")"
    mkdir -p "$(dirname "$cache")"
    printf '%s\n%s\n' "$stat_key" "$sha" > "$cache"
  fi
  local go_root="" go_version="" go_cache=""
  if command -v go >/dev/null 2>&1; then
    go_root="$(go env GOROOT)"
    go_version="$(go env GOVERSION)"
    go_version="${go_version#go}"
    go_cache="$(go env GOCACHE)"
  fi
  printf '{"system":"%s","nodePath":"%s","nodeVersion":"%s","nodeSha256":"%s","goRoot":"%s","goVersion":"%s","goCache":"%s"}\n' \
    "$system" "$node" "$version" "$sha" "$go_root" "$go_version" "$go_cache"
}

# Prepares the stand-in (nix/offline-nixpkgs plus host.json and the production
# node_modules), adds it to the Nix store as a path named "source" (Nix then
# uses it without copying it again) and prints that store path.
nix_env_offline_nixpkgs() {
  local dir="$NIX_ENV_CACHE/nix-offline" host key path
  mkdir -p "$dir"
  (
    flock 9
    nix_env_prod_node_modules || exit 1
    host="$(nix_env_host_json)" || exit 1
    key="$(
      cd "$NIX_ENV_ROOT/nix/offline-nixpkgs" && find . -type f -print0 | sort -z | xargs -0 sha256sum
      printf '%s\n' "$host"
      cat "$NIX_ENV_CACHE/prod-node-modules/key"
    )"
    key="$(printf '%s' "$key" | nix_env_sha256 -)"
    if [ -f "$dir/key" ] && [ "$(cat "$dir/key")" = "$key" ] && [ -f "$dir/store-path" ] &&
      nix-store --check-validity "$(cat "$dir/store-path")" 2>/dev/null; then
      cat "$dir/store-path"
      exit 0
    fi
    nix_env_log "adding the offline nixpkgs stand-in to the Nix store"
    rm -rf "$dir/source"
    mkdir -p "$dir/source/prod-node-modules"
    cp -R "$NIX_ENV_ROOT/nix/offline-nixpkgs/." "$dir/source/"
    printf '%s\n' "$host" > "$dir/source/host.json"
    cp -a "$NIX_ENV_CACHE/prod-node-modules/node_modules" "$NIX_ENV_CACHE/prod-node-modules/package-lock.json" \
      "$dir/source/prod-node-modules/"
    path="$(nix store add-path --name source "$dir/source")" || exit 1
    nix-store --add-root "$dir/gcroot" --indirect --realise "$path" >/dev/null || exit 1
    rm -rf "$dir/source"
    printf '%s\n' "$path" > "$dir/store-path"
    printf '%s\n' "$key" > "$dir/key"
    printf '%s\n' "$path"
  ) 9>"$dir/lock"
}

# `nix build` arguments that replace nixpkgs by the stand-in; the lock file
# keeps the real nixpkgs (the override is not written to it).
nix_env_offline_args() {
  local nixpkgs
  nixpkgs="$(nix_env_offline_nixpkgs)" || return 1
  printf '%s\n' "--override-input nixpkgs path:$nixpkgs --no-write-lock-file"
}
