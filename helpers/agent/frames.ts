// Frame kinds and the frame the run's controller sends an instance's process:
// [kind: u8][length: u32 BE][payload]. The agent's frames carry an instance id
// as well (mux-frames.ts).

export const FRAME = { stdout: 1, stderr: 2, event: 3, tar: 4, tarEnd: 5 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

const headerBytes = 5;
// Frames larger than this are split; readers refuse anything bigger.
export const MAX_FRAME = 1 << 20;

// Encode one frame.
export function encodeFrame(kind: FrameKind, payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(headerBytes);
  header.writeUInt8(kind, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}
