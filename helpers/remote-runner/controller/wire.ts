// The wire between an instance's process (go/cmd/remote-runner) and the run's
// controller, over a Unix socket (docs/controller.md): JSON lines one way,
// frames the other.
import { z } from 'zod';
import { FRAME, MAX_FRAME, encodeFrame } from '../../agent/frames.ts';

export const helloSchema = z.union([
  z.strictObject({ op: z.literal('hello'), version: z.literal(1), pid: z.number().int().positive(), env: z.record(z.string(), z.string()), job: z.string().startsWith('/') }),
  z.strictObject({ op: z.literal('hello'), version: z.literal(1), pid: z.number().int().positive(), env: z.record(z.string(), z.string()), app: z.string().startsWith('/') }),
]);
export type Hello = z.output<typeof helloSchema>;

/** What the controller tells an instance's process. */
export type InstanceEvent = { type: 'exec'; program: string; argv0: string } | { type: 'exit'; status: number } | { type: 'error'; message: string };

// The frames of `bytes` on stream `kind` (stdout or stderr), split to MAX_FRAME.
export function streamFrames(kind: typeof FRAME.stdout | typeof FRAME.stderr, bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += MAX_FRAME) frames.push(encodeFrame(kind, bytes.subarray(at, at + MAX_FRAME)));
  return frames;
}

// The frame of an event.
export function eventFrame(event: InstanceEvent): Buffer {
  return encodeFrame(FRAME.event, Buffer.from(JSON.stringify(event)));
}
