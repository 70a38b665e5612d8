// Who sends a closure to a host: this machine, at most `maxCopies` at a time, or
// a host that holds it already (fan-out, docs/fan-out.md), one copy at a time
// each. A relay that fails falls back to this machine; after a few failures the
// run stops trying relays.
import { copyReport, sendNeeds, type CopyReport, type Needs } from '../closure/copy.ts';
import { canRelayTo, relayCopy, type RelayEnd } from '../closure/relay.ts';
import { narSize } from '../closure/store.ts';
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

/** Sending from here, and relaying from a host that holds the closure. */
export interface Transport {
  copy(target: SendTarget, needs: Needs): Promise<CopyReport>;
  relay(source: RelayEnd, target: SendTarget, needs: Needs): Promise<CopyReport>;
}

const realTransport: Transport = {
  copy: (target, needs) => sendNeeds(target.ssh, target.alias, needs, { onBytes: byteMeter(`remote-runner: ${target.alias} (${target.system}): copying`) }),
  relay: async (source, target, needs) => {
    await relayCopy(source, target, needs.missing);
    return copyReport(needs, await narSize(needs.missing), `relayed from ${source.alias}`);
  },
};

/** A host to send to: its connection, and which job's closure (by key) it gets. */
export interface SendTarget extends RelayEnd {
  key: string;
  system: string;
  phase(phase: string): void;
}

export class Senders {
  readonly #options: SendersOptions;
  readonly #transport: Transport;
  #copying = 0;
  readonly #waiting: Array<() => void> = [];
  /** Hosts that hold a job's closure (by its key) and may send it on. */
  readonly #holders: Array<{ end: RelayEnd; key: string; busy: boolean }> = [];
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
    if (needs.missing.length === 0) return copyReport(needs, 0, 'nothing to send');
    let relay = this.#options.fanOut && canRelayTo(target.ssh.target);
    for (;;) {
      relay &&= this.#relayFailures < MAX_RELAY_FAILURES;
      const holder = relay ? this.#holders.find((h) => h.key === target.key && !h.busy) : undefined;
      if (holder) {
        holder.busy = true;
        try {
          target.phase(`copying the closure from ${holder.end.alias}`);
          return await this.#transport.relay(holder.end, target, needs);
        } catch (error) {
          this.#relayFailures += 1;
          const last = this.#relayFailures === MAX_RELAY_FAILURES ? '; hosts will not send to each other for the rest of the run' : '';
          this.#options.log(`${target.alias}: ${(error as Error).message}; copying from this machine instead${last}`);
          this.#holders.splice(this.#holders.indexOf(holder), 1);
          relay = false;
        } finally {
          holder.busy = false;
          this.#wake();
        }
      } else if (this.#copying < this.#options.maxCopies) {
        target.phase('copying the closure');
        return this.fromHere(() => this.#transport.copy(target, needs));
      } else {
        await this.#nextChange();
      }
    }
  }

  // `end` holds the closure of job `key` now, and may send it on.
  holds(end: RelayEnd, key: string): void {
    this.#holders.push({ end, key, busy: false });
    this.#wake();
  }

  // Until a slot or a holder is freed, or a new holder comes.
  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #wake(): void {
    for (const resume of this.#waiting.splice(0)) resume();
  }
}
