// The wire format of Testground's sync service: requests are validated here,
// once, and responses always carry the same five fields as the Go service's.
import { z } from 'zod';
import { maxMessageBytes, maxNestingDepth, nestsDeeperThan, subscriberIdAllowance } from './limits.ts';

const requestSchema = z.object({
  id: z.string({ error: 'expected a string id' }).min(1, 'expected a non-empty id'),
  is_cancel: z.boolean().optional(),
  publish: z.object({ topic: z.string(), payload: z.unknown() }).nullish(),
  subscribe: z.object({ topic: z.string() }).nullish(),
  barrier: z
    .object({ state: z.string(), target: z.number().int().nonnegative('expected a target >= 0') })
    .nullish(),
  signal_entry: z.object({ state: z.string() }).nullish(),
});

/** One operation, already validated. */
export type Operation =
  | { kind: 'cancel' }
  | { kind: 'publish'; topic: string; payload: unknown }
  | { kind: 'subscribe'; topic: string }
  | { kind: 'barrier'; state: string; target: number }
  | { kind: 'signal_entry'; state: string };

export type ParsedRequest =
  | { ok: true; id: string; op: Operation }
  | { ok: false; id: string; error: string };

export interface Response {
  id: string;
  error: string;
  publish: { seq: number } | null;
  subscribe: string;
  signal_entry: { seq: number } | null;
}

// Build a response with every field present, as the Go service marshals it.
export function response(id: string, fields: Partial<Omit<Response, 'id'>> = {}): Response {
  return { id, error: '', publish: null, subscribe: '', signal_entry: null, ...fields };
}

function describe(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}

// The id of a request, or '' when it has none, so even a refused request can be answered.
function idOf(raw: unknown): string {
  return typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : '';
}

// Parse one text message of `bytes` bytes. Messages larger or deeper than Testground's
// Go service reads are refused here. Operations take the Go service's precedence:
// publish, then subscribe, then barrier, then signal_entry.
export function parseRequest(frame: string, bytes = Buffer.byteLength(frame)): ParsedRequest {
  let raw: unknown;
  try {
    // V8's JSON.parse does not recurse, so even a deeply nested frame is safe to parse.
    raw = JSON.parse(frame);
  } catch (error) {
    if (bytes > maxMessageBytes) return { ok: false, id: '', error: tooLarge(bytes) };
    return { ok: false, id: '', error: `invalid request: frame is not JSON (${(error as Error).message})` };
  }
  const rawId = idOf(raw);
  if (bytes > maxMessageBytes) return { ok: false, id: rawId, error: tooLarge(bytes) };
  if (nestsDeeperThan(frame, maxNestingDepth)) {
    return { ok: false, id: rawId, error: `invalid request: the message nests arrays and objects deeper than ${maxNestingDepth} levels, the most Go's encoding/json decodes` };
  }
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, id: rawId, error: `invalid request: ${parsed.error.issues.map(describe).join('; ')}` };
  }
  const req = parsed.data;
  if (req.is_cancel) return { ok: true, id: req.id, op: { kind: 'cancel' } };
  if (req.publish) return { ok: true, id: req.id, op: { kind: 'publish', ...req.publish } };
  if (req.subscribe) return { ok: true, id: req.id, op: { kind: 'subscribe', topic: req.subscribe.topic } };
  if (req.barrier) return { ok: true, id: req.id, op: { kind: 'barrier', ...req.barrier } };
  if (req.signal_entry) return { ok: true, id: req.id, op: { kind: 'signal_entry', state: req.signal_entry.state } };
  return {
    ok: false,
    id: req.id,
    error: 'invalid request: no operation (expected one of publish, subscribe, barrier, signal_entry, is_cancel)',
  };
}

function tooLarge(bytes: number): string {
  return `invalid request: the message is ${bytes} bytes, over the limit of ${maxMessageBytes} bytes per message that Testground's sync service and SDKs read; nothing was done`;
}

// The frame that hands message `json` to subscription `id`: JSON.stringify(response(id, { subscribe: json })),
// spelled out because it is built once per message and subscriber.
export function subscribeFrame(id: string, json: string): string {
  return `{"id":${JSON.stringify(id)},"error":"","publish":null,"subscribe":${JSON.stringify(json)},"signal_entry":null}`;
}

// The size of the frame that hands message `json` to a subscriber with an SDK-sized id.
export function subscribeFrameBytes(json: string): number {
  return Buffer.byteLength(JSON.stringify(response('0'.repeat(subscriberIdAllowance), { subscribe: json })));
}
