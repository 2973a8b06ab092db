import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { parseContentDisposition } from '../protocol/content-disposition';
import type { SegmentRange } from '../protocol/content-range';
import { intersect } from '../protocol/range-set';
import { hashedRelativePath } from '../protocol/hash-path';
import { rawModeBoundary } from '../protocol/form-body';
import { retryLater, HttpError } from '../protocol/http-errors';
import { parseChecksumHeaders, type ExpectedChecksum } from '../protocol/checksum';
import type { FileMeta, HandoffClaim, SessionRecord } from '../session/model';
import { bodyError, storageError } from '../store/store-errors';
import { SegmentWriter, type Digester, type SegmentWriterOptions } from '../store/segment-writer';
import type { SegmentTicket } from '../state/engine';
import { FileDigests, digestFile, type DigestName } from '../store/digests';
import { unlinkIfOwned } from '../store/files';
import type { OwnFile } from '../store/temp-names';
import { BackendUnreachable, callBackend } from './handoff';
import { completeRequest, fileForm, observeHandOff } from './complete';
import { statusInRanges } from '../protocol/status-ranges';
import { receiveBody } from './receive-body';
import { digestsNeeded, renderAddHeaders, variableLookup, type FileVariables } from './variables';
import { declaredLength, lastRawHeader } from '../http/request';
import { relayAnswer, replayCompletion, sendRangeAnswer } from './responses';
import type { UploadServices } from './services';
import { uploadObserver, type UploadObserver } from './observer';
import * as path from 'node:path';
import { segmentHeaders } from './segment-headers';

/** The upload headers of a raw (non-multipart) request, validated (§3.1–§3.5 with D1, D10–D13). */
export interface RawUploadHeaders {
  contentType: string;
  fileName: string;
  fieldName: string;
  sessionId: string | null;
  range: SegmentRange | null;
  checksum: ExpectedChecksum | null;
  /** Content-Length, or null for a chunked body. */
  contentLength: number | null;
}

export function readRawUploadHeaders(ctx: Context, location: LocationConfig, maxFileSize: number): RawUploadHeaders {
  const req = ctx.req;
  const dispositionValue = lastRawHeader(req, 'content-disposition');
  if (dispositionValue === undefined) throw new HttpError(415, 'a raw upload needs a Content-Disposition header');
  const disposition = parseContentDisposition(dispositionValue.trim());
  if (!disposition.ok) throw new HttpError(400, disposition.reason);

  const { sessionId, range, problem } = segmentHeaders(ctx, location);
  if (problem) throw new HttpError(400, problem);
  if (range && sessionId === null) throw new HttpError(400, 'Content-Range needs a Session-ID (or X-Session-ID) header');

  const checksum = parseChecksumHeaders({
    contentMd5: lastRawHeader(req, 'content-md5'),
    reprDigest: lastRawHeader(req, 'repr-digest'),
    digest: lastRawHeader(req, 'digest'),
  });
  if (checksum && 'error' in checksum) throw new HttpError(400, checksum.error);

  const contentLength = declaredLength(req);
  if (range) {
    if (location.maxFileSize > 0 && range.total > location.maxFileSize) {
      throw new HttpError(413, `upload total ${range.total} exceeds upload_max_file_size (${location.maxFileSize} bytes)`);
    }
    // A file the store's file system cannot hold is refused before any write (EFBIG).
    if (range.total > maxFileSize) throw new HttpError(413, `upload total ${range.total} is larger than the store's file system can hold (${maxFileSize} bytes)`);
    const length = range.end - range.start + 1;
    if (contentLength !== null && contentLength !== length) {
      throw new HttpError(416, `Content-Length ${contentLength} does not match the range length ${length}`);
    }
  } else if (contentLength === 0) {
    throw new HttpError(400, 'empty request body');
  } else if (contentLength !== null && contentLength > maxFileSize) {
    throw new HttpError(413, `the body is larger than the store's file system can hold (${maxFileSize} bytes)`);
  }
  return {
    contentType: lastRawHeader(req, 'content-type') ?? '',
    fileName: disposition.fileName,
    fieldName: disposition.fieldName,
    sessionId,
    range,
    checksum: checksum as ExpectedChecksum | null,
    contentLength,
  };
}

/**
 * Raw mode entry point. With a Session-ID the request is a session's segment: a ranged one, or a
 * single-shot upload of the whole file (no range), which is a session too, so it owns the file
 * named after the session like any segment (one owner per data file) and its completion is kept
 * and replayed like a resumable one (D7, D9). Without a Session-ID: a 10-digit temporary name.
 */
export async function handleRawUpload(ctx: Context, location: LocationConfig, services: UploadServices): Promise<void> {
  const headers = readRawUploadHeaders(ctx, location, services.maxFileSize(location));
  if (headers.sessionId !== null) return handleSessionUpload(ctx, location, services, headers, headers.sessionId);
  return handleTemporaryUpload(ctx, location, services, headers);
}

export function sessionDataPath(location: LocationConfig, id: string): string {
  return path.join(location.store.dir, hashedRelativePath(id, location.store.levels));
}

/** A request's checksum (D21, tus `Upload-Checksum`): the digester its body feeds, and the check once it is in (460). */
export function checksumCheck(expected: ExpectedChecksum | null): { digesters: Digester[]; verify(): void } {
  const digests = expected ? new FileDigests([expected.algorithm]) : null;
  return {
    digesters: digests?.digesters() ?? [],
    verify() {
      if (expected && digests!.finish()[expected.algorithm] !== expected.hex) throw new HttpError(460, `${expected.header} does not match the received bytes`);
    },
  };
}

/** Streams the body through a SegmentWriter and checks length and checksum (D18, D21). */
async function receiveInto(ctx: Context, location: LocationConfig, writer: SegmentWriter, expectedLength: number | null, checksum: { verify(): void }): Promise<void> {
  await receiveBody(ctx.req, ctx.res, writer, location);
  if (expectedLength !== null && writer.received !== expectedLength) {
    throw new HttpError(416, `request body has ${writer.received} bytes, the range announces ${expectedLength}`);
  }
  if (writer.received === 0) throw new HttpError(400, 'empty request body');
  checksum.verify();
}

/** A segment of a session, or a single-shot upload into the session's file (§3.6–§3.12 with D3, D4, D6–D9, D23). */
async function handleSessionUpload(ctx: Context, location: LocationConfig, services: UploadServices, headers: RawUploadHeaders, id: string): Promise<void> {
  const engine = services.sessions(location);
  const policy = services.policy(location);
  const { range } = headers;
  const singleShot = range === null;
  const meta: FileMeta = { fileName: headers.fileName, contentType: headers.contentType, fieldName: headers.fieldName };
  // A single-shot upload of unknown length (chunked) learns its total at the end.
  const total = range ? range.total : headers.contentLength;
  const ticket = await engine.begin(
    {
      id, meta, total, dataPath: sessionDataPath(location, id),
      start: range ? range.start : 0,
      end: range ? range.end : total !== null ? total - 1 : Number.MAX_SAFE_INTEGER,
    },
    policy,
  );
  // Upload progress (track_uploads): the session's entry starts from what the gateway holds.
  const progress = uploadObserver(ctx);
  progress?.began?.({ session: true, created: ticket.created });
  progress?.acknowledged(ticket.record.ranges);
  const knownTotal = ticket.record.total;
  const expectedLength = range ? range.end - range.start + 1 : knownTotal;
  const checksum = checksumCheck(headers.checksum);
  // Digests: a single-shot upload streams the whole file; a segment continues an in-order digest.
  const wholeFile = singleShot ? new FileDigests(digestsNeeded(location)) : null;
  const compare = intersect(ticket.record.ranges, knownTotal === null ? ticket.range : { start: ticket.range.start, end: Math.min(ticket.range.end, knownTotal - 1) });
  const inOrder = singleShot || ticket.file === null || compare.length > 0 ? null : services.inOrderDigests.claim(ticket.record, ticket.range.start, digestsNeeded(location));
  const digesters: Digester[] = [...checksum.digesters, ...(wholeFile?.digesters() ?? []), ...(inOrder?.digesters() ?? [])];
  const { writer, unfence } = segmentWriter(ticket, location, policy.durable, progress, {
    start: ticket.range.start, expectedLength, compare, digesters, softLimit: singleShot ? location.maxFileSize : 0,
  });
  let outcome;
  try {
    try {
      await receiveInto(ctx, location, writer, expectedLength, checksum);
    } catch (err) {
      throw bodyError(err);
    } finally {
      unfence();
    }
    if (writer.overLimit) {
      // upload_max_file_size is soft here (§3.16): the file is dropped, the form still goes out.
      await engine.abort(ticket, policy);
      return handOffDropped(ctx, location, services, meta);
    }
    outcome = await engine.commit(ticket, { total: knownTotal ?? writer.received, meta }, policy);
  } catch (err) {
    if (inOrder) services.inOrderDigests.abandon(ticket.record);
    await engine.abort(ticket, policy).catch((e) => services.log.warn({ session: id, err: (e as Error).message }, 'releasing a failed segment failed'));
    throw err;
  }
  if (inOrder) services.inOrderDigests.commit(ticket.record, ticket.range.end);
  progress?.committed?.();
  progress?.acknowledged(outcome.record.ranges);

  // $upload_content_range: the segment's range; a single-shot upload's is the module's off-by-one
  // form after the data and `bytes 0-0/0` before it (Q29).
  const contentRange = singleShot ? `bytes 0-${writer.received}/${writer.received}` : `bytes ${range!.start}-${range!.end}/${range!.total}`;
  const vars = sessionVariables(outcome.record, contentRange);
  if (outcome.kind === 'partial') return sendRangeAnswer(ctx, 201, outcome.record, location, renderAddHeaders(location, variableLookup(ctx.req, vars)));
  if (outcome.kind === 'replay') {
    progress?.completed(outcome.record.completion!.status);
    return replayCompletion(ctx, outcome.record.completion!, renderAddHeaders(location, variableLookup(ctx.req, vars)));
  }
  const streamed = wholeFile && writer.received === outcome.record.total ? wholeFile.finish() : null;
  return completeSession(ctx, location, services, outcome.record, outcome.claim, singleShot ? { ...vars, contentRange: 'bytes 0-0/0' } : vars, contentRange, streamed);
}

/**
 * The writer of a segment's body into its ticket's file: positional writes checked against the
 * ticket's fence, durable when `durable`, counted for upload progress. A reservation lost
 * mid-stream (shared state: not renewed in time, another instance may own the range now) stops
 * the writes at once, and the segment is not recorded; `unfence` stops listening once the body is in.
 */
export function segmentWriter(
  ticket: SegmentTicket,
  location: LocationConfig,
  durable: boolean,
  progress: UploadObserver | null,
  body: Pick<SegmentWriterOptions, 'start' | 'expectedLength' | 'compare' | 'digesters' | 'softLimit'>,
): { writer: SegmentWriter; unfence(): void } {
  const writer = new SegmentWriter({
    ...body,
    handle: ticket.file?.handle ?? null,
    limitRate: location.limitRate,
    beforeWrite: () => ticket.fence.check(),
    flush: durable && ticket.file ? () => ticket.file!.flush() : undefined,
    onReceived: progress ? (n) => progress.bytes(n) : undefined,
  });
  const unfence = ticket.fence.onLost((reason) => writer.destroy(reason));
  return { writer, unfence };
}

export function sessionVariables(record: SessionRecord, contentRange: string): FileVariables {
  return {
    fieldName: record.fieldName,
    fileName: record.fileName,
    contentType: record.contentType,
    tmpPath: record.dataPath,
    fileNumber: 1,
    contentRange,
  };
}

/**
 * Completion of a session: the generated form goes to the backend exactly once (D6, D7). Any
 * failure drops the hand-off claim at once, so the client's retry hands off again (a failed
 * attempt never blocks the session longer than the attempt itself).
 */
export async function completeSession(
  ctx: Context,
  location: LocationConfig,
  services: UploadServices,
  record: SessionRecord,
  claim: HandoffClaim,
  vars: FileVariables,
  contentRange: string,
  streamedDigests: Partial<Record<DigestName, string>> | null,
): Promise<void> {
  const engine = services.sessions(location);
  const policy = services.policy(location);
  const boundary = rawModeBoundary(services.counter.take());
  let handOff;
  try {
    const resume = services.inOrderDigests.take(record);
    const digests = streamedDigests ?? (await digestFile(record.dataPath, digestsNeeded(location), resume));
    const { form, addHeaders } = fileForm(ctx, location, boundary, vars, { digests, size: record.total!, contentRange });
    handOff = { answer: await observeHandOff(ctx, () => callBackend(location, ctx.req, form, `multipart/form-data; boundary=${boundary}`)), addHeaders };
  } catch (err) {
    await engine.releaseHandoff(record, claim, policy).catch(() => undefined);
    if (!(err instanceof BackendUnreachable)) throw err;
    // D7: keep the complete upload; the client's retry of any segment re-attempts the hand-off.
    services.log.warn({ session: record.id, err: err.message }, 'backend unreachable; upload kept for a retry');
    throw retryLater(`the backend is unreachable (${err.message}); the upload is kept, retry to hand it off`);
  }
  const { answer, addHeaders } = handOff;
  const cleanup = statusInRanges(answer.status, location.cleanup);
  uploadObserver(ctx)?.completed(answer.status);
  await engine.finishHandoff(record, claim, {
    status: answer.status,
    statusMessage: answer.statusMessage,
    headers: answer.headers,
    bodyBase64: answer.body ? answer.body.toString('base64') : null,
    completedAt: Date.now(),
    fileRemoved: cleanup,
  }, policy);
  relayAnswer(ctx, answer, addHeaders);
}

/** A single-shot upload whose file was dropped (soft `upload_max_file_size`): the form still goes, without the file. */
async function handOffDropped(ctx: Context, location: LocationConfig, services: UploadServices, meta: FileMeta): Promise<void> {
  const vars: FileVariables = { ...meta, tmpPath: '', fileNumber: 1, contentRange: 'bytes 0-0/0' };
  const boundary = rawModeBoundary(services.counter.take());
  const { form, addHeaders } = fileForm(ctx, location, boundary, vars, null);
  await completeRequest(ctx, location, form, `multipart/form-data; boundary=${boundary}`, addHeaders, async () => undefined);
}

/** A whole file in one request without a Session-ID: a new 10-digit temporary name (§3.6, §4.7). */
async function handleTemporaryUpload(ctx: Context, location: LocationConfig, services: UploadServices, headers: RawUploadHeaders): Promise<void> {
  // The module takes the boundary number before it creates the file (§4.7).
  const boundary = rawModeBoundary(services.counter.take());
  let file: OwnFile;
  try {
    file = await services.counter.createFile(location.store.dir, location.store.levels, location.storeAccess, location.fsync);
  } catch (err) {
    throw storageError(err);
  }
  // Clean-up only ever deletes what this request created.
  const remove = () => unlinkIfOwned(file.path, file.fileId).catch(() => false);

  const digests = new FileDigests(digestsNeeded(location));
  const checksum = checksumCheck(headers.checksum);
  const progress = uploadObserver(ctx);
  progress?.began?.({ session: false, created: true });
  const writer = new SegmentWriter({
    handle: file.handle, start: 0, expectedLength: null, compare: [],
    digesters: [...digests.digesters(), ...checksum.digesters],
    limitRate: location.limitRate, softLimit: location.maxFileSize,
    flush: location.fsync ? () => file.handle.datasync() : undefined,
    onReceived: progress ? (n) => progress.bytes(n) : undefined,
  });
  try {
    await receiveInto(ctx, location, writer, null, checksum);
  } catch (err) {
    await file.handle.close();
    await remove();
    throw bodyError(err);
  }
  await file.handle.close();
  const vars: FileVariables = {
    fieldName: headers.fieldName, fileName: headers.fileName, contentType: headers.contentType,
    tmpPath: file.path, fileNumber: 1, contentRange: 'bytes 0-0/0',
  };
  if (writer.overLimit) await remove();
  const result = writer.overLimit ? null : { digests: digests.finish(), size: writer.received, contentRange: `bytes 0-${writer.received}/${writer.received}` };
  let form;
  try {
    form = fileForm(ctx, location, boundary, vars, result);
  } catch (err) {
    await remove();
    throw err;
  }
  await completeRequest(ctx, location, form.form, `multipart/form-data; boundary=${boundary}`, form.addHeaders, remove);
}
