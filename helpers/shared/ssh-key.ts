// SSH public key blobs: the key type they name, and their OpenSSH fingerprint.
import { createHash } from 'node:crypto';

// The key type a raw SSH public key blob starts with (a uint32 length, then the name).
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

// The OpenSSH fingerprint of a key blob: `SHA256:` and unpadded base64.
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
