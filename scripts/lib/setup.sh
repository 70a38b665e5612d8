# Shared setup for scripts/test and scripts/demo: install what is missing, once.
# Source it; it defines functions and changes nothing by itself.

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

log() { printf '%s\n' "$*" >&2; }

# Debian packages that provide each command we need.
declare -A APT_FOR=(
  [nix]=nix-bin
  [nix-store]=nix-bin
  [sshd]=openssh-server
  [ssh]=openssh-client
  [ip]=iproute2
  [nsenter]=util-linux
  [go]=golang-go
)

missing_packages() {
  local cmd pkgs=()
  for cmd in "$@"; do
    if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
      pkgs+=("${APT_FOR[$cmd]:-$cmd}")
    fi
  done
  printf '%s\n' "${pkgs[@]}" | sort -u | sed '/^$/d'
}

# Install the Debian packages that provide the given commands, if any is missing.
ensure_commands() {
  local pkgs
  pkgs=$(missing_packages "$@")
  [ -z "$pkgs" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: $(echo $pkgs) (for: $*)"
    log "run this script as root, or install them with: sudo apt-get install -y $(echo $pkgs)"
    exit 1
  fi
  log "installing: $(echo $pkgs)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >&2
}

# Network namespaces, mounts and /nix need root; say so precisely.
require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "$1 needs root: it creates network namespaces, private mounts and sshd processes for the lab hosts,"
    log "and uses the machine's /nix store. Run it as root (for example: sudo $0)."
    exit 1
  fi
}

# npm ci, only when package-lock.json changed since the last install.
ensure_node_modules() {
  local root stamp want
  root=$(repo_root)
  stamp="$root/node_modules/.package-lock.sha256"
  want=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "npm ci"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
}
