import type { ByteRange } from '../../../src/protocol/range-set';
import type { HttpAnswer } from './retry';
import type { Progress } from './progress';

export type { ByteRange, HttpAnswer, Progress };

/** What the file is, for one platform: its bytes by range, and its identity. */
export interface SegmentSource {
  name: string;
  size: number;
  /** Milliseconds since the epoch (0 when unknown, e.g. a Buffer). */
  lastModified: number;
  type: string;
  /** The bytes `start … endExclusive−1`. */
  read(start: number, endExclusive: number): Promise<Uint8Array>;
  /** A request body for those bytes (a Blob slice in browsers, so nothing is read twice). */
  body(start: number, endExclusive: number): Promise<unknown>;
}

export interface TransportRequest {
  method: 'GET' | 'POST';
  url: string;
  /** In the order they go on the wire. */
  headers: Array<[string, string]>;
  body?: unknown;
  bodyLength?: number;
  signal: AbortSignal;
  /** No byte sent or received for this long → NetworkError. */
  idleTimeoutMs: number;
  /** Bytes of the body sent so far. */
  onUploadProgress?: (loaded: number) => void;
}

/** Resolves with any HTTP answer; rejects with NetworkError, or the abort reason. */
export interface Transport {
  request(req: TransportRequest): Promise<HttpAnswer>;
}

export interface Platform<F> {
  openSource(file: F, options: SourceOptions): Promise<SegmentSource>;
  transport(options: UploaderOptions): Transport;
  digest(algorithm: 'md5' | 'sha256', data: Uint8Array): Promise<Uint8Array>;
  /** An absolute URL for requests, or throws for one the platform cannot use. */
  resolveUrl(url: string): string;
}

export interface SourceOptions {
  /** File name sent in Content-Disposition (default: the file's, `upload.bin` for a Buffer or a nameless Blob). */
  name?: string;
  /** Content-Type of the segments (default: the file's type, else `application/octet-stream`). */
  type?: string;
  /** Overrides the file's modification time for `sessionIdFor`. */
  lastModified?: number;
}

export interface RetryInfo {
  error: unknown;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  /** The segment being retried, or undefined for a status query. */
  range: ByteRange | undefined;
}

export interface UploaderOptions extends SourceOptions {
  /** The upload location itself (default `/upload`, as the original; Node needs an absolute URL). */
  url?: string;
  /** Extra request headers, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Record<string, string> | ReadonlyArray<readonly [string, string]>;
  /** Segments in flight at once (default 1). */
  concurrency?: number;
  /** Retries of one request after network errors, 5xx, 408, 429, 460 (default 5). */
  retries?: number;
  /** First back-off delay in ms (default 500); doubles per attempt, with jitter. */
  retryDelay?: number;
  /** Cap of the back-off delay in ms (default 30 000); a longer Retry-After is still honoured. */
  maxRetryDelay?: number;
  /** A request that sends and receives nothing for this long fails as a network error (default 60 000 ms). */
  timeout?: number;
  /** Aborts everything in flight; the promise rejects with the signal's reason. Resume with a new call. */
  signal?: AbortSignal;
  /** Byte-level progress, at most 10 events per second. */
  onProgress?: (progress: Progress) => void;
  /** Called before each retry (logging, UI). */
  onRetry?: (info: RetryInfo) => void;
  /** D21 checksum of every segment: `Content-MD5` or `Repr-Digest: sha-256=:…:`. */
  checksum?: 'md5' | 'sha256';
  /** Node only: the http(s).Agent to use (default: Node's global agent). */
  agent?: unknown;
}

/** The backend's answer to the completed upload. */
export interface BackendResponse {
  status: number;
  statusText: string;
  /** Lower-case names. Empty when only the status query reported the completion. */
  headers: Record<string, string>;
  /** The answer's body (`complete` from the original sample backend); `null` when only the status query reported it. */
  body: string | null;
}

export interface UploadStatus {
  /** `end === total − 1`: the server holds every byte (the original's key). */
  completed: boolean;
  /**
   * The backend accepted the upload (a 2xx answer). The original set this key when the answer was
   * the word `complete`, which is what the sample backend answers.
   */
  complete: boolean;
  /** First byte of the first received range (0 in a normal upload). */
  start: number;
  /** Last byte of the first received range; −1 when nothing was received. */
  end: number;
  total: number;
  /** Every received range, inclusive, ascending. */
  ranges: ByteRange[];
  /** The gateway's `X-Upload-State` (derived from the answers when the server is the module). */
  state: 'incomplete' | 'handing-off' | 'complete';
  sessionId: string;
  /** Once complete: the backend's answer. */
  response?: BackendResponse;
}

export interface FileUploader {
  /** The server's view of the upload (D22 status query; the module's 2-byte trick on a 405). */
  fetchStatus(): Promise<UploadStatus>;
  /** Uploads the ranges `status` lacks; resolves with the completed status and the backend's answer. */
  uploadSegments(status: Partial<UploadStatus> & Pick<UploadStatus, 'total'>, onSegmentComplete?: (status: UploadStatus) => void): Promise<UploadStatus>;
  /** The Session-ID in use (computed with `sessionIdFor` when none was given). */
  sessionId(): Promise<string>;
}
