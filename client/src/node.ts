/**
 * `upload-gateway/client` in Node: the promise-based fileUploader of the original project, for a
 * file path, a Buffer/Uint8Array or a Blob (`fs.openAsBlob`), over node:http/https.
 */
import { createFileUploader } from './core/uploader';
import { sessionIdForSource } from './core/session-id';
import type { FileUploader, SourceOptions, UploaderOptions } from './core/types';
import { nodePlatform, openNodeSource, type NodeFileInput } from './node/platform';

export * from './shared-exports';
export type { NodeFileInput };

/**
 * `fileUploader(file, segmentSize, sessionId, options)`: `fetchStatus()` then `uploadSegments(status, onSegmentComplete)`.
 * Without a `sessionId`, `sessionIdFor(file)` is used. `options.url` must be absolute in Node.
 */
export function fileUploader(file: NodeFileInput, segmentSize?: number, sessionId?: string, options?: UploaderOptions): FileUploader {
  return createFileUploader(nodePlatform, file, segmentSize, sessionId, options);
}

/** A stable Session-ID from name, size, modification time and the first and last MiB. */
export async function sessionIdFor(file: NodeFileInput, options: SourceOptions = {}): Promise<string> {
  return sessionIdForSource(await openNodeSource(file, options), (d) => nodePlatform.digest('sha256', d));
}
