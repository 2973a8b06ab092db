/**
 * The fileUploader: one implementation for every platform, given a Platform (file access,
 * transport, digests). It asks the server what it has, sends only the ranges it lacks, and
 * resumes from what the server says, never from what the client believes it sent.
 */
import pLimit from 'p-limit';
import { checksumHeader, contentDisposition, contentRange, headerPairs, segmentContentType } from './headers';
import { coveredBytes, isComplete, missingRanges, normalise, parseRangeList, planSegments, union, type ByteRange } from '../../../src/protocol/range-set';
import { ProgressTracker } from './progress';
import {
  abortReason,
  backoffDelay,
  errorForAnswer,
  isAbortError,
  isRetryable,
  retryAfterMs,
  sleep,
  throwIfAborted,
  UploadError,
  NetworkError,
  type HttpAnswer,
} from './retry';
import { checkSessionId, sessionIdForSource } from './session-id';
import type { BackendResponse, FileUploader, Platform, SegmentSource, Transport, UploaderOptions, UploadStatus } from './types';

const DEFAULT_SEGMENT = 1024 * 1024;
type State = UploadStatus['state'];

export function makeStatus(ranges: readonly ByteRange[], total: number, sessionId: string, state: State, response?: BackendResponse): UploadStatus {
  const set = normalise(ranges);
  const first = set[0];
  const status: UploadStatus = {
    completed: isComplete(set, total),
    // The original set `complete` when the backend answered `complete`; any 2xx answer counts here.
    complete: state === 'complete' && (response === undefined || (response.status >= 200 && response.status < 300)),
    start: first ? first.start : 0,
    end: first ? first.end : -1,
    total,
    ranges: set,
    state,
    sessionId,
  };
  if (response) status.response = response;
  return status;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${what} must be a positive integer, got ${String(value)}`);
  return value;
}

/**
 * The D22 status query of one session: what the server holds of a file of `size` bytes (a new
 * session when it knows none), or `null` when the server has no status query (405: the module).
 */
export async function queryStatus(
  transport: Transport,
  query: { url: string; sessionId: string; size: number; headers?: Array<[string, string]>; idleTimeoutMs?: number; signal?: AbortSignal },
): Promise<UploadStatus | null> {
  const { url, sessionId: sid, size } = query;
  const answer = await transport.request({
    method: 'GET',
    url,
    headers: [['Session-ID', sid], ...(query.headers ?? [])],
    signal: query.signal ?? new AbortController().signal,
    idleTimeoutMs: query.idleTimeoutMs ?? 60_000,
  });
  if (answer.status === 404) return makeStatus([], size, sid, 'incomplete');
  const isD22 = answer.status === 200 && ('x-upload-state' in answer.headers || 'x-upload-total' in answer.headers);
  if (answer.status === 405 || (answer.status === 200 && !isD22)) return null;
  if (answer.status !== 200) throw errorForAnswer(answer, 'status query failed');
  const list = parseRangeList(answer.headers['range'] ?? answer.body);
  if (!list) throw new UploadError(`unreadable status answer ${JSON.stringify(answer.headers['range'] ?? answer.body)}`, { status: 200, response: answer });
  const total = Number(answer.headers['x-upload-total'] ?? list.total ?? size);
  if (total !== size) {
    throw new UploadError(`session ${sid} holds a file of ${total} bytes, this file has ${size}: use another session id`, { status: 409, response: answer });
  }
  const header = answer.headers['x-upload-state'];
  const state: State = header === 'complete' || header === 'handing-off' ? header : 'incomplete';
  if (state === 'complete') {
    const backendStatus = Number(answer.headers['x-upload-backend-status'] ?? 200);
    return makeStatus([{ start: 0, end: total - 1 }], total, sid, state, { status: backendStatus, statusText: '', headers: {}, body: null });
  }
  return makeStatus(list.ranges, total, sid, state);
}

export function createFileUploader<F>(platform: Platform<F>, file: F, segmentSize: number = DEFAULT_SEGMENT, sessionId?: string, options: UploaderOptions = {}): FileUploader {
  const size = positiveInteger(segmentSize ?? DEFAULT_SEGMENT, 'segmentSize');
  const concurrency = positiveInteger(options.concurrency ?? 1, 'concurrency');
  const retries = options.retries ?? 5;
  if (!Number.isInteger(retries) || retries < 0) throw new TypeError('retries must be a non-negative integer');
  const backoff = { baseMs: options.retryDelay ?? 500, maxMs: options.maxRetryDelay ?? 30_000 };
  const idleTimeoutMs = options.timeout ?? 60_000;
  const url = platform.resolveUrl(options.url ?? '/upload');
  const extraHeaders = headerPairs(options.headers);
  const transport = platform.transport(options);
  const givenId = sessionId === undefined || sessionId === null ? undefined : checkSessionId(sessionId);

  let sourcePromise: Promise<SegmentSource> | undefined;
  const source = () => (sourcePromise ??= platform.openSource(file, options));
  let idPromise: Promise<string> | undefined;
  const id = () => (idPromise ??= givenId !== undefined ? Promise.resolve(givenId) : source().then((s) => sessionIdForSource(s, (d) => platform.digest('sha256', d))));
  /** D22 available? `undefined` until the first query tells. */
  let statusQuery: boolean | undefined;
  let requestIds = 0;

  async function opened(): Promise<{ src: SegmentSource; sid: string }> {
    const src = await source();
    if (src.size === 0) throw new UploadError('an empty file cannot be uploaded with the resumable protocol (ranges need at least one byte)');
    return { src, sid: await id() };
  }

  /** Retries `step` per the policy; `range` is only for onRetry. */
  async function withRetries<T>(step: () => Promise<T>, signal: AbortSignal | undefined, range?: ByteRange): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      try {
        return await step();
      } catch (err) {
        if (isAbortError(err, signal) || signal?.aborted || !isRetryable(err) || attempt > retries) throw err;
        const delayMs = delayFor(err, attempt);
        options.onRetry?.({ error: err, attempt, delayMs, range });
        await sleep(delayMs, signal);
      }
    }
  }

  function delayFor(err: unknown, attempt: number): number {
    const after = err instanceof UploadError ? retryAfterMs(err.response?.headers['retry-after']) : undefined;
    return backoffDelay(attempt, backoff, after);
  }

  /** One D22 status query: the status, or `null` when the server has none (405: the module). */
  async function queryOnce(src: SegmentSource, sid: string, signal: AbortSignal | undefined): Promise<UploadStatus | null> {
    if (statusQuery === false) return null;
    const status = await queryStatus(transport, { url, sessionId: sid, size: src.size, headers: extraHeaders, idleTimeoutMs, signal });
    statusQuery = status !== null;
    return status;
  }

  /** Sends the bytes `part` as one segment with the legacy client's headers. */
  async function sendPart(src: SegmentSource, sid: string, part: ByteRange, signal: AbortSignal, onUploadProgress?: (loaded: number) => void): Promise<HttpAnswer> {
    const headers: Array<[string, string]> = [
      ['Content-Type', segmentContentType(src.type)],
      ['Content-Disposition', contentDisposition(src.name)],
      ['X-Content-Range', contentRange(part.start, part.end, src.size)],
      ['Session-ID', sid],
      ...extraHeaders,
    ];
    let body: unknown;
    if (options.checksum) {
      const bytes = await src.read(part.start, part.end + 1);
      headers.push(checksumHeader(options.checksum, await platform.digest(options.checksum, bytes)));
      body = bytes;
    } else {
      body = await src.body(part.start, part.end + 1);
    }
    return transport.request({ method: 'POST', url, headers, body, bodyLength: part.end - part.start + 1, signal, idleTimeoutMs, onUploadProgress });
  }

  type SegmentOutcome = { kind: 'ranges'; ranges: ByteRange[] } | { kind: 'answer'; response: BackendResponse };

  /** A segment's answer: 201 + the ranges the server holds, or the backend's answer; else an error. */
  function readSegmentAnswer(answer: HttpAnswer, part: ByteRange, total: number, sid: string): SegmentOutcome {
    if (answer.status === 201) {
      const list = parseRangeList(answer.headers['range'] ?? answer.body);
      if (list?.total !== undefined && list.total !== total) {
        throw new UploadError(`session ${sid} holds a file of ${list.total} bytes, this file has ${total}`, { status: 409, response: answer });
      }
      // The 201 list may be cut after 256 bytes (the module's buffer): the part itself is acknowledged regardless.
      return { kind: 'ranges', ranges: union(list?.ranges ?? [], [part]) };
    }
    if (answer.status >= 200 && answer.status < 300) {
      return { kind: 'answer', response: { status: answer.status, statusText: answer.statusText, headers: answer.headers, body: answer.body } };
    }
    throw errorForAnswer(answer, `segment ${part.start}-${part.end}/${total} failed`);
  }

  async function fetchStatus(): Promise<UploadStatus> {
    const { src, sid } = await opened();
    const signal = options.signal;
    return withRetries(async () => {
      const queried = await queryOnce(src, sid, signal);
      if (queried) return queried;
      // The module has no status query: upload the first two bytes and read its 201 (the original's trick).
      const part = { start: 0, end: Math.min(1, src.size - 1) };
      const outcome = readSegmentAnswer(await sendPart(src, sid, part, signal ?? new AbortController().signal), part, src.size, sid);
      return outcome.kind === 'answer'
        ? makeStatus([{ start: 0, end: src.size - 1 }], src.size, sid, 'complete', outcome.response)
        : makeStatus(outcome.ranges, src.size, sid, 'incomplete');
    }, signal);
  }

  async function uploadSegments(status: Partial<UploadStatus> & Pick<UploadStatus, 'total'>, onSegmentComplete: (status: UploadStatus) => void = () => undefined): Promise<UploadStatus> {
    const { src, sid } = await opened();
    const total = src.size;
    if (status.total !== total) throw new UploadError(`the status is for a file of ${status.total} bytes, this file has ${total}`);
    const userSignal = options.signal;
    throwIfAborted(userSignal);
    if (status.complete && status.response) return finalStatus(makeStatus(status.ranges ?? [{ start: 0, end: total - 1 }], total, sid, 'complete', status.response));

    let known = normalise(status.ranges ?? (status.end !== undefined && status.end >= (status.start ?? 0) ? [{ start: status.start ?? 0, end: status.end }] : []));
    let answer: BackendResponse | undefined;
    const tracker = new ProgressTracker(total, options.onProgress);
    tracker.setAcknowledged(coveredBytes(known));

    const current = () => makeStatus(known, total, sid, answer ? 'complete' : 'incomplete', answer);
    /** The server holds `ranges` (and, with `response`, has handed the file off). */
    const acknowledge = (ranges: readonly ByteRange[], response?: BackendResponse): void => {
      const before = coveredBytes(known);
      if (response) {
        if (answer) return;
        answer = response;
        known = [{ start: 0, end: total - 1 }];
      } else {
        known = union(known, ranges);
        if (coveredBytes(known) === before) return;
      }
      tracker.setAcknowledged(coveredBytes(known));
      onSegmentComplete(current());
    };

    let refreshing: Promise<void> | null = null;
    /** After a failure: ask the server what arrived (a lost 201 must not make us send bytes again). */
    const refresh = (signal: AbortSignal): Promise<void> => {
      if (statusQuery !== true) return Promise.resolve();
      refreshing ??= (async () => {
        try {
          const s = await queryOnce(src, sid, signal);
          if (!s) return;
          if (s.state === 'complete') acknowledge(s.ranges, s.response);
          else acknowledge(s.ranges);
        } catch (err) {
          if (signal.aborted) throw abortReason(signal);
          // Unreachable again: the segment's own retry loop waits and tries later.
        } finally {
          refreshing = null;
        }
      })();
      return refreshing;
    };

    /** Sends the parts of `segment` the server lacks, each with its own retries. */
    const runSegment = async (segment: ByteRange, signal: AbortSignal): Promise<void> => {
      let attempt = 0;
      for (;;) {
        throwIfAborted(signal);
        if (answer) return;
        const part = missingRanges(known, total, segment)[0];
        if (!part) return;
        const progressId = ++requestIds;
        try {
          const reply = await sendPart(src, sid, part, signal, (loaded) => tracker.setInFlight(progressId, loaded));
          const outcome = readSegmentAnswer(reply, part, total, sid);
          tracker.endInFlight(progressId, false);
          if (outcome.kind === 'answer') acknowledge([], outcome.response);
          else acknowledge(outcome.ranges);
          tracker.setAcknowledged(coveredBytes(known));
          attempt = 0;
        } catch (err) {
          tracker.endInFlight(progressId);
          if (signal.aborted) throw abortReason(signal);
          if (!isRetryable(err) || ++attempt > retries) throw err;
          const delayMs = delayFor(err, attempt);
          options.onRetry?.({ error: err, attempt, delayMs, range: part });
          await sleep(delayMs, signal);
          await refresh(signal);
        }
      }
    };

    /** Runs a plan with up to `concurrency` segments in flight; the first failure stops the rest. */
    const runPlan = async (plan: ByteRange[], signal: AbortSignal, stop: AbortController): Promise<void> => {
      const limit = pLimit(concurrency);
      let failed = false;
      let failure: unknown;
      await Promise.all(
        plan.map((segment) =>
          limit(async () => {
            if (failed || signal.aborted) return;
            try {
              await runSegment(segment, signal);
            } catch (err) {
              if (!failed) {
                failed = true;
                failure = err;
                stop.abort(err);
              }
            }
          }),
        ),
      );
      if (failed) throw userSignal?.aborted ? abortReason(userSignal) : failure;
    };

    /**
     * Every planned byte is acknowledged but no backend answer came back (it was lost, the gateway
     * crashed during the hand-off, the backend was unreachable): ask, wait for a hand-off in
     * progress, or send the last byte again to trigger the hand-off and get the answer.
     */
    const settle = async (signal: AbortSignal): Promise<'done' | 'replan'> => {
      return withRetries(async () => {
        if (answer) return 'done';
        const s = await queryOnce(src, sid, signal);
        if (s) {
          if (s.state === 'complete') {
            acknowledge(s.ranges, s.response);
            return 'done';
          }
          // Nothing is in flight now: the server's view replaces ours.
          known = normalise(s.ranges);
          tracker.setAcknowledged(coveredBytes(known));
          if (!isComplete(known, total)) return 'replan';
          if (s.state === 'handing-off') throw new UploadError('the gateway is handing the upload to the backend', { retryable: true });
        } else if (isComplete(known, total)) {
          throw new UploadError('the server acknowledged every byte but its final answer was lost, and it has no status query to ask');
        }
        const part = { start: total - 1, end: total - 1 };
        const outcome = readSegmentAnswer(await sendPart(src, sid, part, signal), part, total, sid);
        if (outcome.kind === 'answer') {
          acknowledge([], outcome.response);
          return 'done';
        }
        known = normalise(outcome.ranges);
        return 'replan';
      }, signal);
    };

    const stop = new AbortController();
    const onUserAbort = () => stop.abort(abortReason(userSignal!));
    userSignal?.addEventListener('abort', onUserAbort, { once: true });
    try {
      for (let round = 0; ; round++) {
        await runPlan(planSegments(missingRanges(known, total), size), stop.signal, stop);
        if (answer) break;
        if ((await settle(stop.signal)) === 'done') break;
        if (round >= retries + 1) throw new UploadError('the server keeps losing acknowledged bytes');
      }
    } catch (err) {
      tracker.stop();
      throw err;
    } finally {
      userSignal?.removeEventListener('abort', onUserAbort);
    }
    await tracker.finish();
    return finalStatus(current());
  }

  function finalStatus(status: UploadStatus): UploadStatus {
    const r = status.response!;
    if (r.status < 200 || r.status >= 300) {
      throw new UploadError(`the backend answered ${r.status} ${r.statusText}`.trim(), { status: r.status, response: r });
    }
    return status;
  }

  return {
    fetchStatus,
    uploadSegments,
    sessionId: id,
  };
}

export { NetworkError, UploadError };
