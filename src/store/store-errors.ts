import { retryLater, HttpError } from '../protocol/http-errors';

/**
 * A file-system failure as the client's answer: a full disk or quota is `507` (nothing was
 * acknowledged; the same request succeeds once space is freed), a file beyond what the file
 * system can hold `413`, anything else `503` (the module's streamed 503, §2.3).
 */
export function storageError(err: unknown, what = 'the upload store'): HttpError {
  if (err instanceof HttpError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENAMETOOLONG') return new HttpError(400, `file name too long for ${what} (shorten the Session-ID)`);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new HttpError(507, `${what} is full (${code}); nothing of this request was stored`);
  if (code === 'EFBIG') return new HttpError(413, `the file is larger than ${what}'s file system can hold`);
  return retryLater(`${what} is not writable (${code ?? (err as Error).message ?? 'error'})`);
}

/** A failure while storing a body: file-system errors (an errno code such as `ENOSPC`) as `storageError`, anything else unchanged. */
export function bodyError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && !(err instanceof HttpError) ? storageError(err) : err;
}
