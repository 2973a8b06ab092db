/**
 * The browser build of the client (served by the gateway at `/client.js` as the global
 * `UploadGateway`, and as an ES module for bundlers): the same fileUploader over XMLHttpRequest.
 */
import { createFileUploader, queryStatus } from './core/uploader';
import { headerPairs } from './core/headers';
import { sessionIdForSource } from './core/session-id';
import type { FileUploader, SourceOptions, UploaderOptions, UploadStatus } from './core/types';
import { browserPlatform, openBlobSource, type BrowserFileInput } from './browser/platform';

export * from './shared-exports';
export type { BrowserFileInput };

/** `fileUploader(file, segmentSize, sessionId, options)` for a File or Blob; `options.url` defaults to `/upload`. */
export function fileUploader(file: BrowserFileInput, segmentSize?: number, sessionId?: string, options?: UploaderOptions): FileUploader {
  return createFileUploader(browserPlatform, file, segmentSize, sessionId, options);
}

/**
 * What the server holds of session `sessionId`, a file of `size` bytes, without the file (e.g.
 * after a page reload): the D22 status query; `null` when the server has no status query.
 */
export function sessionStatus(sessionId: string, size: number, options: Pick<UploaderOptions, 'url' | 'headers' | 'timeout'> = {}): Promise<UploadStatus | null> {
  return queryStatus(browserPlatform.transport(options), {
    url: browserPlatform.resolveUrl(options.url ?? '/upload'),
    sessionId,
    size,
    headers: headerPairs(options.headers),
    idleTimeoutMs: options.timeout,
  });
}

/** A stable Session-ID from name, size, lastModified and the first and last MiB. */
export async function sessionIdFor(file: BrowserFileInput, options: SourceOptions = {}): Promise<string> {
  return sessionIdForSource(await openBlobSource(file, options), (d) => browserPlatform.digest('sha256', d));
}
