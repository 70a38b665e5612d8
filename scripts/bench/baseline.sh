#!/usr/bin/env bash
# The baseline of `npm run bench`: the original prototype's remote-runner flow,
# one instance per call, with the same commands it ran:
#
#   1. nix copy -s --to ssh://HOST APP          (the app's closure)
#   2. ssh HOST mktemp -d                       (the remote outputs dir)
#   3. ssh HOST -R 5050:... -R 8086:... 'env -S "<TEST_* ...>" APP/bin/plan'
#   4. scp -r HOST:DIR/* $TEST_OUTPUTS_PATH     (outputs home)
#   5. ssh HOST rm -r DIR                       (clean up)
#
# Usage:
#   baseline.sh HOST APP                         run on HOST
#   baseline.sh --choose COUNTER HOSTS APP       pick HOST from the comma list
#                                                HOSTS, round robin, by an atomic
#                                                counter in the file COUNTER
#
# The instance environment (TEST_*, SYNC_SERVICE_*, INFLUXDB_URL) comes from
# the caller, as local:exec gives it. Like the prototype, the remote app gets
# the sync service on the remote port 5050 (reverse-forwarded to the local
# SYNC_SERVICE_PORT; with --choose, 5050 + seq - 1, see below) and InfluxDB on
# 8086. Where the prototype ended with rm's status, this script exits with the
# app's, so the benchmark can check that the run worked. With
# BENCH_STEP_LOG=<file>, each step appends "<step> <ms> <host>" to that file.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../lib/nix-env.sh
. "$here/../lib/nix-env.sh"

if [ "${1:-}" = --choose ]; then
  counter=$2 hosts=$3 app=$4
  # The prototype asked choose-server (a signal_entry on the sync service);
  # an flock'ed counter costs about the same and needs no extra process.
  seq=$(
    {
      flock 9
      n=$(($(cat "$counter" 2>/dev/null || echo 0) + 1))
      echo "$n" >"$counter"
      echo "$n"
    } 9>>"$counter.lock"
  )
  IFS=, read -r -a list <<<"$hosts"
  host=${list[$(((seq - 1) % ${#list[@]}))]}
  # The one change to the prototype's flow: a remote sync port per instance. With
  # the fixed 5050, a second instance on a host cannot bind it and its app reaches
  # the sync service only while the first instance's ssh is still up; in a trial
  # with 4 instances per host, 6 of 16 failed.
  remote_sync_port=$((5050 + seq - 1))
else
  host=$1 app=$2
fi
remote_sync_port=${remote_sync_port:-5050}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
step_started=$(now_ms)
step() { # step NAME: log the time since the previous step
  local t
  t=$(now_ms)
  if [ -n "${BENCH_STEP_LOG:-}" ]; then echo "$1 $((t - step_started)) $host" >>"$BENCH_STEP_LOG"; fi
  step_started=$t
}

echo "targeting: $host"

# The test environment minus the outputs path, one VAR=value per line (the
# prototype's grep); the sync service is reached through the forwarded port.
# TEST_TEMP_PATH goes to the remote dir too: the prototype's Go app ignored it,
# our plan enters it, and the caller's (local) temp dir is not on the host.
local_sync_port=${SYNC_SERVICE_PORT:-5050}
influx_port=8086
if [ -n "${INFLUXDB_URL:-}" ]; then
  influx_port=$(printf '%s\n' "$INFLUXDB_URL" | sed -n 's#^[a-z]*://[^/:]*:\([0-9]*\).*#\1#p')
  influx_port=${influx_port:-8086}
fi
test_env=$(env | grep 'TEST\|INFLUXDB_URL\|REDIS_HOST\|SYNC_SERVICE' | grep -v 'TEST_OUTPUTS_PATH\|TEST_TEMP_PATH' | grep -v '^SYNC_SERVICE_PORT=')
test_env=$(printf '%s\nSYNC_SERVICE_PORT=%s' "$test_env" "$remote_sync_port")

echo "copying application to $host"
nix copy -s --to "ssh://$host" "$app"
step copy

echo "creating output dir on $host"
remote_dir=$(ssh "$host" mktemp -d)
step mktemp
test_env=$(printf '%s\nTEST_OUTPUTS_PATH=%s\nTEST_TEMP_PATH=%s' "$test_env" "$remote_dir" "$remote_dir")

ssh "$host" -R "$remote_sync_port:127.0.0.1:$local_sync_port" -R "8086:127.0.0.1:$influx_port" "env -S \"$test_env\"  $app/bin/plan"
status=$?
step run

scp -r "$host:$remote_dir/*" "$TEST_OUTPUTS_PATH"
step scp

ssh "$host" rm -r "$remote_dir"
step rm
exit "$status"
