// The copy stream's two ends on a host. A stream is one header line, naming how
// the NARs that follow are packed, then `nix-store --export` output (through
// zstd or not). The receiver imports it and, when asked, keeps what arrives in a
// spool, so that another host can be sent the same stream while it still
// arrives here (fan-out, docs/fan-out.md): a chain of hosts then moves the
// closure in about the time of one copy. The scripts are one line each, with no
// backslash, so that they can stand in an authorized_keys `command="…"`.
import { REMOTE_NIX_PATH, quoteStorePath } from '../ssh/remote-shell.ts';

/** How the NARs of a stream are packed. */
export type Packing = 'zstd' | 'none';

/** The header line that starts a stream. */
export const streamHeader = (packing: Packing): string => `remote-runner-stream 1 ${packing}\n`;

/** Where a host keeps the stream it receives, for the hosts after it. */
export const spoolDir = (tag: string): string => `/tmp/remote-runner-spool-${tag}`;

// How many times (50 ms apart) a feeder looks for the source's spool to appear.
const SPOOL_WAIT_TRIES = 200;
// How long `tail` waits between looks at whether the receiver is done.
const FOLLOW_POLL_S = 0.05;

// The shell that reads a stream on stdin and imports it; with `spool`, it also
// keeps the packed stream in that directory while it arrives, and removes the
// directory once it is imported and no other host's copy reads it any more.
export function receiverScript(spool?: string): string {
  const steps = [
    'umask 077',
    REMOTE_NIX_PATH,
    'IFS= read -r header || exit 90',
    "case $header in 'remote-runner-stream 1 zstd') m=zstd; unpack='zstd -d -q -c';; 'remote-runner-stream 1 none') m=none; unpack=cat;; *) echo \"not a copy stream: $header\" >&2; exit 91;; esac",
  ];
  const plain = '$unpack | nix-store --import >/dev/null';
  if (!spool) return [...steps, plain].join('; ');
  // The lock comes last: a feeder takes it as the sign that the rest is there.
  const made = `mkdir "$d" && : >"$d/stream" && printf %s "$m" >"$d/method" && echo $$ >"$d/pid" && : >"$d/lock"`;
  // Removed once every reader (which holds the lock shared) is done, in the
  // background, so that this copy counts as done now.
  const removeLater = `trap '( flock -x 9; rm -rf "$d" ) 9<"$d/lock" </dev/null >/dev/null 2>&1 &' EXIT`;
  // A spool that cannot be made (a full /tmp) costs the hosts after this one
  // their relay, never this host its copy.
  return [
    ...steps,
    `d=${spool}`,
    `if ${made}; then ${removeLater}; tee -a "$d/stream" | ${plain}; else rm -rf "$d"; ${plain}; fi`,
  ].join('; ');
}

// The shell that writes a stream of `paths` to stdout for another host: the
// spool of what this host receives, followed while it still arrives, when
// `spool` is given and still there; else an export from this host's store.
// It says which on its first line of stderr: `feeding from the spool (zstd)` or
// `feeding from the store`.
export function feederScript(paths: string[], spool?: string): string {
  const fromStore = `echo 'feeding from the store' >&2; printf '${streamHeader('none').trim()}\\n'; exec nix-store --export ${paths.map(quoteStorePath).join(' ')}`;
  if (!spool) return `${REMOTE_NIX_PATH}; ${fromStore}`;
  return [
    REMOTE_NIX_PATH,
    `d=${spool}`,
    // The source's own copy may not have made its spool yet: wait for it, or for
    // the paths to be in its store, within a bound.
    `i=0; while [ ! -e "$d/lock" ] && ! nix-store --check-validity ${paths.map(quoteStorePath).join(' ')} >/dev/null 2>&1; do i=$((i + 1)); [ "$i" -gt ${SPOOL_WAIT_TRIES} ] && break; sleep 0.05; done`,
    // A shared lock on the spool keeps its receiver from removing it while this reads.
    'if [ -e "$d/lock" ] && command exec 8<"$d/lock" && flock -s -n 8 && [ -s "$d/pid" ] && tail --version 2>/dev/null | grep -q GNU; then ' +
      'm=$(cat "$d/method"); echo "feeding from the spool ($m)" >&2; ' +
      `printf 'remote-runner-stream 1 %s\\n' "$m"; exec tail -c +1 -s ${FOLLOW_POLL_S} --pid="$(cat "$d/pid")" -f "$d/stream"; ` +
      `else ${fromStore}; fi`,
  ].join('; ');
}
