// The one user-facing error of the package: a stable `code`, a message that
// names the host, the command and the value, and the underlying error as `cause`.

/** Stable codes that callers and tests can branch on. */
export type ErrorCode =
  | 'E_USAGE'
  | 'E_PARAM'
  | 'E_RUNENV'
  | 'E_MANIFEST'
  | 'E_SYNC'
  | 'E_BUILD'
  | 'E_SSH'
  | 'E_COPY'
  | 'E_REMOTE'
  | 'E_OUTPUTS'
  | 'E_TIMEOUT'
  | 'E_ABORTED'
  | 'E_INSTANCE';

export class TgError extends Error {
  override readonly name = 'TgError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

// True for errors the user caused and can fix: they get one line, not a stack.
export function isUserError(error: unknown): error is TgError {
  return error instanceof TgError;
}

// The last `lines` non-empty lines of a process's output, for error messages.
export function tail(text: string, lines = 5): string {
  return text.split('\n').map((l) => l.trimEnd()).filter(Boolean).slice(-lines).join(' | ');
}

// A value quoted for a message, cut short: an error about one field of a file must
// not echo the file (it may be the wrong file, holding secrets).
export function quoteShort(value: string, max = 20): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(`${value.slice(0, max)}…`)} (${value.length} characters)`;
}
