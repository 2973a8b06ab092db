/**
 * Errors the gateway answers itself (D14: `text/plain; charset=utf-8` one-line reasons with the
 * module's status codes). Reason phrases are nginx's, where nginx has one.
 */

/** Status-line reason phrases for the statuses the gateway generates. */
export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  405: 'Not Allowed',
  408: 'Request Time-out',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable',
  431: 'Request Header Fields Too Large',
  460: 'Checksum Mismatch',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
  505: 'HTTP Version Not Supported',
  507: 'Insufficient Storage',
};

/**
 * An error answer: `status` (400–599), a one-line `reason` (CR/LF and other control characters
 * are replaced by spaces, so it always fits one line) and extra response `headers`
 * (e.g. `Retry-After`). `expose` tells Koa the message may be shown to the client.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string>;
  readonly expose = true;

  constructor(status: number, reason: string, headers?: Record<string, string>) {
    const line = reason.replace(/[\x00-\x1f\x7f]+/g, ' ').trim() || STATUS_TEXT[status] || 'error';
    super(line);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`HttpError: invalid status ${String(status)}`);
    }
    this.name = 'HttpError';
    this.status = status;
    this.reason = line;
    this.headers = { ...(headers ?? {}) };
  }
}

/** 503 + Retry-After: the client should simply send the same request again (D4, D7). */
export function retryLater(reason: string): HttpError {
  return new HttpError(503, reason, { 'Retry-After': '1' });
}

/**
 * Whether a client should send the same request again after this status: network failures aside,
 * 5xx (503 included), 408 and 429; and 460 (D21 checksum mismatch: the bytes were damaged on the
 * way, nothing was recorded). Every other 4xx is final. Shared by the client bundle and progress
 * tracking (a retried segment does not end its session's progress entry).
 */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429 || status === 460;
}
