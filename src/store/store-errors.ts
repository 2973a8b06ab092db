import { UploadError } from '../protocol/http-errors';

/** A file-system failure of the upload store, as the client's answer (the module's streamed 503, §2.3). */
export function storeErrorToUpload(err: unknown): never {
  if (err instanceof UploadError) throw err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENAMETOOLONG') throw new UploadError(400, 'file name too long for the store (shorten the Session-ID)');
  if (code === 'ENOSPC' || code === 'EDQUOT') throw new UploadError(507, 'the upload store is full');
  throw new UploadError(503, `the upload store is not writable (${code ?? 'error'})`);
}
