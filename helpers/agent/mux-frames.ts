// Frames of an agent that serves many instances (`remote-agent serve`): each
// carries the instance's id, so one SSH channel carries every instance on a host:
// [kind: u8][id: u32 BE][length: u32 BE][payload]. Id 0 is the agent itself.
import { FRAME, MAX_FRAME } from './frames.ts';

const headerBytes = 9;

// Decodes id frames from arbitrary chunks.
export class MuxFrameReader {
  #buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (kind: number, id: number, payload: Buffer) => void) {}

  // Feed bytes; throws on a frame that breaks the protocol.
  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let at = 0;
    while (this.#buffer.length - at >= headerBytes) {
      const kind = this.#buffer.readUInt8(at);
      const id = this.#buffer.readUInt32BE(at + 1);
      const length = this.#buffer.readUInt32BE(at + 5);
      if (kind < FRAME.stdout || kind > FRAME.tarEnd || length > MAX_FRAME) {
        throw new Error(`agent protocol: bad frame header (kind ${kind}, id ${id}, length ${length})`);
      }
      if (this.#buffer.length - at < headerBytes + length) break;
      const payload = this.#buffer.subarray(at + headerBytes, at + headerBytes + length);
      at += headerBytes + length;
      this.onFrame(kind, id, payload);
    }
    this.#buffer = at === 0 ? this.#buffer : this.#buffer.subarray(at);
  }
}
