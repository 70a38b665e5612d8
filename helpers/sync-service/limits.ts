// Wire limits shared with Testground's Go service and SDKs, and the defaults of our own.

/**
 * The most bytes one WebSocket message may hold. It is nhooyr/websocket's default
 * read limit, which Testground's Go service and sdk-go keep: a larger message kills
 * an sdk-go client with `read limited at 32769 bytes`.
 */
export const maxMessageBytes = 32_768;

/** The deepest nesting of arrays and objects in one message; Go's encoding/json refuses deeper ones. */
export const maxNestingDepth = 10_000;

/**
 * The id length a subscriber's frame is sized with when a publish is checked.
 * The SDKs number their requests from 0, so 20 digits covers any of their ids.
 */
export const subscriberIdAllowance = 20;

/** Frames above this close the connection at once (1009) instead of being read and answered. */
export const hardFrameBytes = 1024 * 1024;

/**
 * Subscription messages are queued for a connection only while less than this waits in
 * the service's own buffers; the rest waits in its topic. With many subscribers that
 * read slower than the topic grows, the service then holds this much per connection,
 * not half of maxQueuedBytes.
 */
export const subscriptionRoomBytes = 64 * 1024;

/**
 * Subscription messages are queued only while less than this waits in the service's own
 * buffers over all connections (the kernel's socket buffers come on top); the rest wait
 * in their topics. A queued frame takes about four times its bytes in memory.
 */
export const sharedQueueBytes = 64 * 1024 * 1024;

/**
 * The most bytes of frames held back in one turn of the event loop, over all
 * connections, before they are written at once (see WriteBatch).
 */
export const batchBytes = 32 * 1024 * 1024;

/** Defaults of the options in SyncServiceOptions. */
export const defaults = {
  maxStates: 100_000,
  maxSubscriptions: 1_000,
  maxQueuedBytes: 4 * 1024 * 1024,
  stallTimeoutMs: 10_000,
} as const;

const quoteMark = 0x22; // "
const backslash = 0x5c; // \
const openBracket = 0x5b; // [
const closeBracket = 0x5d; // ]
const openBrace = 0x7b; // {
const closeBrace = 0x7d; // }

// True when JSON `text` nests arrays and objects deeper than `max`, as Go's decoder counts them.
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === backslash) i += 1;
      else if (c === quoteMark) inString = false;
    } else if (c === quoteMark) {
      inString = true;
    } else if (c === openBracket || c === openBrace) {
      depth += 1;
      if (depth > max) return true;
    } else if (c === closeBracket || c === closeBrace) {
      depth -= 1;
    }
  }
  return false;
}

// Where the service says what it refused or dropped (a declaration of its own, so
// the public types never name the WebSocket library's).
export type Log = (level: 'info' | 'warn', message: string) => void;
