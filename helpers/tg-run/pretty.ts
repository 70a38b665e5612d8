// Instance output as Testground's pretty printer shows it:
//   <elapsed>s <CLASS> << group[000] >> <text>
// A run event on stdout becomes START, MESSAGE, OK, FAIL or CRASH; other stdout
// lines are OTHER, stderr lines ERROR (the remote runner's own lines RUNNER); an
// instance that ends without OK or FAIL gets INCOMPLETE. `raw` keeps the lines as
// they came, prefixed with the tag only.
import type { Writable } from 'node:stream';

type Class = 'ERROR' | 'START' | 'OK' | 'FAIL' | 'CRASH' | 'INCOMPLETE' | 'MESSAGE' | 'OTHER' | 'RUNNER';

interface Event {
  start_event?: { runenv?: unknown };
  message_event?: { message?: string };
  success_event?: unknown;
  failure_event?: { error?: string };
  crash_event?: { error?: string; stacktrace?: string };
  stage_start_event?: unknown;
  stage_end_event?: unknown;
}

export class PrettyPrinter {
  readonly #settled = new Set<string>();

  constructor(
    private readonly out: { stdout: Writable; stderr: Writable },
    private readonly raw = false,
    private readonly start = Date.now(),
  ) {}

  // One line the instance wrote on stdout.
  stdout(tag: string, line: string): void {
    if (this.raw) return void this.out.stdout.write(`<< ${tag} >> ${line}\n`);
    const parsed = parseLine(line);
    if (!parsed) return this.#print(this.out.stdout, Date.now(), 'OTHER', tag, line);
    const { event, at } = parsed;
    if (event.success_event) {
      this.#settled.add(tag);
      this.#print(this.out.stdout, at, 'OK', tag, '');
    } else if (event.failure_event) {
      this.#settled.add(tag);
      this.#print(this.out.stdout, at, 'FAIL', tag, event.failure_event.error ?? '');
    } else if (event.crash_event) {
      this.#settled.add(tag);
      this.#print(this.out.stdout, at, 'CRASH', tag, `${event.crash_event.error ?? ''}${event.crash_event.stacktrace ?? ''}`);
    } else if (event.message_event) this.#print(this.out.stdout, at, 'MESSAGE', tag, event.message_event.message ?? '');
    else if (event.start_event) this.#print(this.out.stdout, at, 'START', tag, JSON.stringify(event.start_event.runenv ?? {}));
    else if (!event.stage_start_event && !event.stage_end_event) this.#print(this.out.stdout, at, 'OTHER', tag, line);
  }

  // One line the instance wrote on stderr.
  stderr(tag: string, line: string): void {
    if (this.raw) return void this.out.stderr.write(`<< ${tag} >> ${line}\n`);
    this.#print(this.out.stderr, Date.now(), line.startsWith('remote-runner: ') ? 'RUNNER' : 'ERROR', tag, line);
  }

  // The instance's output has ended.
  finish(tag: string): void {
    if (!this.raw && !this.#settled.has(tag)) this.#print(this.out.stdout, Date.now(), 'INCOMPLETE', tag, '');
  }

  #print(sink: Writable, at: number, cls: Class, tag: string, text: string): void {
    const elapsed = Math.max(0, at - this.start) / 1000;
    sink.write(`${elapsed.toFixed(4).padStart(5)}s ${cls.padStart(10)} << ${tag} >> ${text}\n`);
  }
}

// A JSON log line with an `event`, and when it happened (its `ts` in nanoseconds, else now).
function parseLine(line: string): { event: Event; at: number } | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const record = JSON.parse(line) as { event?: unknown; ts?: unknown };
    if (typeof record.event !== 'object' || record.event === null) return undefined;
    const at = typeof record.ts === 'number' && record.ts > 0 ? record.ts / 1e6 : Date.now();
    return { event: record.event as Event, at };
  } catch {
    return undefined;
  }
}
