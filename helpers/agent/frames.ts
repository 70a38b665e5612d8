// The agent's stdout is a stream of frames, so the app's stdout, its stderr, the
// outputs tar and status events share one SSH channel byte for byte:
// [kind: u8][length: u32 BE][payload].

export const FRAME = { stdout: 1, stderr: 2, event: 3, tar: 4, tarEnd: 5 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

const headerBytes = 5;
// Frames larger than this are split; the reader refuses anything bigger.
export const MAX_FRAME = 1 << 20;

// Encode one frame.
export function encodeFrame(kind: FrameKind, payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(headerBytes);
  header.writeUInt8(kind, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

// Decodes frames from arbitrary chunks.
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (kind: number, payload: Buffer) => void) {}

  // Feed bytes; throws on a frame that breaks the protocol.
  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= headerBytes) {
      const kind = this.#buffer.readUInt8(0);
      const length = this.#buffer.readUInt32BE(1);
      if (kind < FRAME.stdout || kind > FRAME.tarEnd || length > MAX_FRAME) {
        throw new Error(`agent protocol: bad frame header (kind ${kind}, length ${length})`);
      }
      if (this.#buffer.length < headerBytes + length) return;
      const payload = this.#buffer.subarray(headerBytes, headerBytes + length);
      this.#buffer = this.#buffer.subarray(headerBytes + length);
      this.onFrame(kind, payload);
    }
  }

  // Bytes left over from an incomplete frame.
  get pending(): number {
    return this.#buffer.length;
  }
}
