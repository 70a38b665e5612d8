// Attribute run events to instances. Testground's events name only the group, so
// each instance claims, when it exits, the group's unclaimed result event that
// fits its exit status (and the event it printed itself, when it printed one).

export type Outcome = 'success' | 'failure' | 'crash' | 'timeout' | 'cancelled';
type ResultKind = 'success' | 'failure' | 'crash';

interface ResultEvent {
  kind: ResultKind;
  error?: string;
}

const kinds: Record<string, ResultKind> = { success_event: 'success', failure_event: 'failure', crash_event: 'crash' };

// The result kind and group of a run event, if it is one.
export function resultOf(event: unknown): { group: string; result: ResultEvent } | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  for (const [key, kind] of Object.entries(kinds)) {
    const body = (event as Record<string, unknown>)[key] as { group?: unknown; error?: unknown } | undefined;
    if (body && typeof body === 'object') {
      const result: ResultEvent = { kind };
      if (typeof body.error === 'string') result.error = body.error;
      return { group: typeof body.group === 'string' ? body.group : '', result };
    }
  }
  return undefined;
}

// The result kind an instance printed on its own output (the SDK logs events as JSON lines).
export function printedResult(line: string): ResultKind | undefined {
  if (!line.includes('"event"')) return undefined;
  try {
    return resultOf((JSON.parse(line) as { event?: unknown }).event)?.result.kind;
  } catch {
    return undefined;
  }
}

export interface Settled {
  outcome: Outcome;
  detail: string;
}

export class OutcomeBook {
  readonly #pool = new Map<string, ResultEvent[]>();

  // Record one event from the run's events topic.
  add(event: unknown): void {
    const r = resultOf(event);
    if (!r) return;
    const list = this.#pool.get(r.group) ?? [];
    list.push(r.result);
    this.#pool.set(r.group, list);
  }

  // Decide an instance's outcome when it exits.
  settle(group: string, exit: { code: number | null; signal: NodeJS.Signals | null }, printed?: ResultKind, stopped?: 'timeout' | 'cancelled'): Settled {
    const how = exit.signal ? `killed by ${exit.signal}` : `exited ${exit.code}`;
    if (stopped) return { outcome: stopped, detail: stopped === 'timeout' ? `stopped at the timeout (${how})` : `stopped on request (${how})` };
    const ok = exit.code === 0 && !exit.signal;
    const order: ResultKind[] = ok ? ['success', 'failure', 'crash'] : ['failure', 'crash'];
    if (printed && order.includes(printed)) order.unshift(printed);
    for (const kind of order) {
      const event = this.#claim(group, kind);
      if (event) return { outcome: kind, detail: event.error ?? how };
    }
    if (ok) return { outcome: 'failure', detail: 'exited 0 without recording a result event' };
    return { outcome: 'crash', detail: how };
  }

  #claim(group: string, kind: ResultKind): ResultEvent | undefined {
    const list = this.#pool.get(group) ?? [];
    const i = list.findIndex((e) => e.kind === kind);
    return i < 0 ? undefined : list.splice(i, 1)[0];
  }
}
