// Who sends a closure to a host: this machine, at most `maxCopies` at a time, or
// a host that holds it (fan-out, docs/fan-out.md), one copy at a time each. A
// host counts as holding the closure from the moment its copy starts: it keeps
// what arrives in a spool, and the next host is fed from that spool while it
// still arrives, so that a chain of hosts moves the closure in about the time
// of one copy. A relay that fails falls back to this machine; after a few
// failures the run stops trying relays.
import { randomBytes } from 'node:crypto';
import { copyReport, sendNeeds, type CopyReport, type Needs } from '../closure/copy.ts';
import { canRelayTo, relayCopy, type RelayEnd } from '../closure/relay.ts';
import { narSize } from '../closure/store.ts';
import { spoolDir } from '../closure/stream.ts';
import { byteMeter } from './progress.ts';

/** Relays that may fail (hosts that cannot reach each other) before a run stops trying them. */
const MAX_RELAY_FAILURES = 2;

export interface SendersOptions {
  /** How many copies (or remote builds) this machine runs at once. */
  maxCopies: number;
  /** Let hosts that hold a closure send it on. */
  fanOut: boolean;
  log(line: string): void;
  /** How bytes move; the real copy and relay unless replaced (tests). */
  transport?: Transport;
}

/** Where a copy's stream comes from and where the target keeps it (when it may feed others). */
export interface Route {
  /** The spool to follow on the source, if it has one for these paths. */
  sourceSpool?: string;
  targetSpool?: string;
}

/** Sending from here, and relaying from a host that holds the closure. */
export interface Transport {
  copy(target: SendTarget, needs: Needs, route: Route): Promise<CopyReport>;
  relay(source: RelayEnd, target: SendTarget, needs: Needs, route: Route): Promise<CopyReport>;
}

const realTransport: Transport = {
  copy: (target, needs, route) =>
    sendNeeds(target.ssh, target.alias, needs, { onBytes: byteMeter(`remote-runner: ${target.alias} (${target.system}): copying`), ...(route.targetSpool ? { spool: route.targetSpool } : {}) }),
  relay: async (source, target, needs, route) => {
    const fed = await relayCopy(source, target, needs.missing, route);
    return copyReport(needs, await narSize(needs.missing), `relayed from ${source.alias}, ${fed.replace('from the spool', 'as it arrived there')}`);
  },
};

/** A host to send to: its connection, and which job's closure (by key) it gets. */
export interface SendTarget extends RelayEnd {
  key: string;
  system: string;
  /** It will hold the job's closure once sent (not so when the app is built on it). */
  mayHold: boolean;
  phase(phase: string): void;
}

/** A host that holds (or is receiving) a job's closure and may feed it to another. */
interface Holder {
  end: RelayEnd;
  key: string;
  busy: boolean;
  /** What it receives into a spool, and which paths that stream carries. */
  spool?: { dir: string; paths: Set<string> };
  /** Its own copy still runs: it can feed only what its spool carries. */
  receiving?: boolean;
}

// The holder's spool carries every path the target lacks.
const covers = (holder: Holder, needs: Needs): boolean => holder.spool !== undefined && needs.missing.every((p) => holder.spool!.paths.has(p));

export class Senders {
  readonly #options: SendersOptions;
  readonly #transport: Transport;
  #copying = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #holders: Holder[] = [];
  #relayFailures = 0;

  constructor(options: SendersOptions) {
    this.#options = options;
    this.#transport = options.transport ?? realTransport;
  }

  // Run `work` (a copy or a remote build from here) holding one of this machine's slots.
  async fromHere<T>(work: () => Promise<T>): Promise<T> {
    while (this.#copying >= this.#options.maxCopies) await this.#nextChange();
    this.#copying += 1;
    try {
      return await work();
    } finally {
      this.#copying -= 1;
      this.#wake();
    }
  }

  // Send what `target` lacks: from a free holder of its closure, else from here.
  async send(target: SendTarget, needs: Needs): Promise<CopyReport> {
    if (needs.missing.length === 0) {
      if (target.mayHold) this.#hold({ end: target, key: target.key, busy: false });
      return copyReport(needs, 0, 'nothing to send');
    }
    let relay = this.#options.fanOut && canRelayTo(target.ssh.target);
    for (;;) {
      relay &&= this.#relayFailures < MAX_RELAY_FAILURES;
      const holder = relay ? this.#holders.find((h) => h.key === target.key && !h.busy && (!h.receiving || covers(h, needs))) : undefined;
      if (holder) {
        holder.busy = true;
        try {
          target.phase(`copying the closure from ${holder.end.alias}`);
          const sourceSpool = covers(holder, needs) ? holder.spool!.dir : undefined;
          return await this.#receiving(target, needs, (targetSpool) => this.#transport.relay(holder.end, target, needs, { ...(sourceSpool ? { sourceSpool } : {}), ...(targetSpool ? { targetSpool } : {}) }));
        } catch (error) {
          this.#relayFailures += 1;
          const last = this.#relayFailures === MAX_RELAY_FAILURES ? '; hosts will not send to each other for the rest of the run' : '';
          this.#options.log(`${target.alias}: ${(error as Error).message}; copying from this machine instead${last}`);
          this.#drop(holder);
          relay = false;
        } finally {
          holder.busy = false;
          this.#wake();
        }
      } else if (this.#copying < this.#options.maxCopies) {
        target.phase('copying the closure');
        return this.fromHere(() => this.#receiving(target, needs, (targetSpool) => this.#transport.copy(target, needs, targetSpool ? { targetSpool } : {})));
      } else {
        await this.#nextChange();
      }
    }
  }

  // Run a copy to `target`; while it runs, the target may feed others from its
  // spool, and once it is done, from its store. A failed copy makes it no holder.
  async #receiving(target: SendTarget, needs: Needs, copy: (targetSpool: string | undefined) => Promise<CopyReport>): Promise<CopyReport> {
    if (!target.mayHold || !this.#options.fanOut) return copy(undefined);
    const dir = spoolDir(randomBytes(8).toString('hex'));
    const holder: Holder = { end: target, key: target.key, busy: false, spool: { dir, paths: new Set(needs.missing) }, receiving: true };
    this.#hold(holder);
    try {
      const report = await copy(dir);
      holder.receiving = false;
      this.#wake();
      return report;
    } catch (error) {
      this.#drop(holder);
      throw error;
    }
  }

  #hold(holder: Holder): void {
    this.#holders.push(holder);
    this.#wake();
  }

  #drop(holder: Holder): void {
    const at = this.#holders.indexOf(holder);
    if (at >= 0) this.#holders.splice(at, 1);
  }

  // Until a slot or a holder is freed, or a new holder comes.
  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #wake(): void {
    for (const resume of this.#waiting.splice(0)) resume();
  }
}
