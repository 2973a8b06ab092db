/**
 * The browser build of the client (served by the gateway at `/client.js` as the global
 * `UploadGateway`, and as an ES module for bundlers): the same fileUploader over XMLHttpRequest.
 */
import { createFileUploader } from './core/uploader';
import { sessionIdForSource } from './core/session-id';
import type { FileUploader, SourceOptions, UploaderOptions } from './core/types';
import { browserPlatform, openBlobSource, type BrowserFileInput } from './browser/platform';

export * from './shared-exports';
export type { BrowserFileInput };

/** `fileUploader(file, segmentSize, sessionId, options)` for a File or Blob; `options.url` defaults to `/upload`. */
export function fileUploader(file: BrowserFileInput, segmentSize?: number, sessionId?: string, options?: UploaderOptions): FileUploader {
  return createFileUploader(browserPlatform, file, segmentSize, sessionId, options);
}

/** A stable Session-ID from name, size, lastModified and the first and last MiB. */
export async function sessionIdFor(file: BrowserFileInput, options: SourceOptions = {}): Promise<string> {
  return sessionIdForSource(await openBlobSource(file, options), (d) => browserPlatform.digest('sha256', d));
}
