// Lab links shaped as networks are, for B4', B8 and B9: shape them for one step and
// always take the shaping off again; count the bytes a link carried; and empty a
// host's store of a closure, so that the next copy finds it cold.
import { labCommand, onHost } from './lab.ts';
import { qdiscSentBytes } from './network.ts';
import { log, must } from './util.ts';

/** A host link's shaping, as `scripts/lab shape` takes it. */
export interface LinkShape {
  rate: string;
  delay?: string;
}

const shapeArgs = (s: LinkShape): string[] => ['--rate', s.rate, ...(s.delay ? ['--delay', s.delay] : [])];
export const shapeText = (s: LinkShape): string => shapeArgs(s).join(' ');

// Run `step` with the links of `hosts` shaped, and this machine's uplink into the lab
// when `uplink` gives its rate; the shaping goes again afterwards, whether `step`
// succeeded or not (should that fail too, the lab's down at the end removes it).
export async function withShaping<T>(hosts: string[], shape: LinkShape, uplink: string | undefined, step: () => Promise<T>): Promise<T> {
  const undo: string[][] = [];
  try {
    for (const host of hosts) {
      undo.push(['unshape', host]);
      await labCommand(['shape', host, ...shapeArgs(shape)]);
    }
    if (uplink) {
      undo.push(['uplink', 'none']);
      await labCommand(['uplink', '--rate', uplink]);
    }
    return await step();
  } finally {
    for (const args of undo) {
      await labCommand(args).catch((error: unknown) => log(`scripts/lab ${args.join(' ')} failed: ${(error as Error).message}`));
    }
  }
}

/** The device whose tbf carries what this machine and the other hosts send to `host`. */
export const linkTo = (host: string): string => `veth-${host}`;
/** The bridge, whose tbf (`scripts/lab uplink`) carries what this machine alone sends into the lab. */
export const UPLINK = 'lab-br0';

// Bytes the shaped device has sent since it was shaped (a shape replaces the qdisc, and its count).
export async function sentOn(device: string): Promise<number> {
  return qdiscSentBytes((await must('tc', ['-s', 'qdisc', 'show', 'dev', device, 'root'])).stdout);
}

// The bytes `device` sends while `step` runs, with the step's wall time and value.
export async function counted<T>(device: string, step: () => Promise<T>): Promise<{ value: T; ms: number; wireBytes: number }> {
  const before = await sentOn(device);
  const t0 = performance.now();
  const value = await step();
  const ms = performance.now() - t0;
  return { value, ms, wireBytes: (await sentOn(device)) - before };
}

// Delete `paths` from the host's store and make sure they are gone. Only valid paths
// are named to nix-store --delete, and all of a closure at once, so that no path is
// kept alive by a referrer left behind.
export async function dropFromHost(host: string, paths: string[]): Promise<void> {
  const list = paths.map((p) => `'${p}'`).join(' ');
  const valid = `for p in ${list}; do nix-store --check-validity "$p" 2>/dev/null && echo "$p"; done`;
  const left = await onHost(host, `v=$(${valid}); [ -z "$v" ] || nix-store --delete $v >/dev/null 2>&1; ${valid}; exit 0`);
  if (left.trim() !== '') throw new Error(`${host}: nix-store --delete left ${left.trim().split('\n').length} of ${paths.length} paths in the store: ${left.trim().split('\n')[0]}`);
}
