/** What both entry points export besides fileUploader/sessionIdFor. */
export { parseRangeList, formatRangeList, missingRanges, planSegments, normalise, coveredBytes, type ByteRange, type RangeList } from '../../src/protocol/range-set';
export { UploadError, NetworkError, isRetryableStatus, backoffDelay, retryAfterMs } from './core/retry';
export { contentDisposition } from './core/headers';
export type { Progress } from './core/progress';
export type { BackendResponse, FileUploader, RetryInfo, SourceOptions, UploaderOptions, UploadStatus } from './core/types';
