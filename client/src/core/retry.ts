/** Retry policy: what is worth retrying, how long to wait, and an abortable sleep. Pure apart from timers. */
import { isRetryableStatus } from '../../../src/protocol/http-errors';

/** The request never produced an answer: refused, reset, dropped, timed out. Always retryable. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

export interface HttpAnswer {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  body: string;
}

/** An HTTP answer, or a backend's answer known only by its status (`body: null`). */
export type AnswerLike = Omit<HttpAnswer, 'body'> & { body: string | null };

/** An upload step failed for good (or after the retries ran out). */
export class UploadError extends Error {
  override name = 'UploadError';
  /** HTTP status of the answer that caused it, if any. */
  readonly status: number | undefined;
  /** The answer that caused it, if any (for a backend's refusal: its status, headers and body). */
  readonly response: AnswerLike | undefined;
  readonly retryable: boolean;
  constructor(message: string, options: { status?: number; response?: AnswerLike; retryable?: boolean; cause?: unknown } = {}) {
    super(message);
    this.status = options.status;
    this.response = options.response;
    this.retryable = options.retryable ?? false;
    if ('cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/**
 * Network errors, 5xx (503 included), 408 and 429 are retried; every other 4xx is final.
 * Also retried: 460 (D21 checksum mismatch), because it means the bytes were damaged on the way
 * and the server recorded nothing; sending them again is the point of the checksum.
 */
export { isRetryableStatus };

export function errorForAnswer(answer: HttpAnswer, what: string): UploadError {
  const reason = answer.body.length > 0 && answer.body.length <= 300 ? `: ${answer.body.trim()}` : '';
  return new UploadError(`${what}: ${answer.status} ${answer.statusText}${reason}`.trim(), {
    status: answer.status,
    response: answer,
    retryable: isRetryableStatus(answer.status),
  });
}

export function isRetryable(err: unknown): boolean {
  return err instanceof NetworkError || (err instanceof UploadError && err.retryable);
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date), `undefined` when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface BackoffOptions {
  /** First delay (ms); doubles on each attempt. */
  baseMs: number;
  /** Upper bound of the exponential part (ms). */
  maxMs: number;
}

/**
 * Exponential back-off with jitter ("equal jitter": half fixed, half random, so delays still
 * grow): attempt 1 waits in [base/2, base], attempt 2 in [base, 2·base], … capped at `maxMs`.
 * A `Retry-After` of the server is honoured as a lower bound.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, retryAfter?: number, random: () => number = Math.random): number {
  const exp = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(retryAfter !== undefined ? Math.max(retryAfter, jittered) : jittered);
}

/** The error an abort rejects with: the signal's reason, or an `AbortError`. */
export function abortReason(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  return makeAbortError();
}

export function makeAbortError(message = 'The upload was aborted'): Error {
  if (typeof DOMException === 'function') return new DOMException(message, 'AbortError');
  const err = new Error(message);
  err.name = 'AbortError';
  return err;
}

export function isAbortError(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && err === signal.reason) return true;
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** Resolves after `ms`, or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
