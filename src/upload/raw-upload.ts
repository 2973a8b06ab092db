import { promises as fs, constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { parseContentDisposition } from '../protocol/content-disposition';
import { parseContentRange, type SegmentRange } from '../protocol/content-range';
import { parseSessionId } from '../protocol/session-id';
import { addRange, intersect, isComplete } from '../protocol/range-set';
import { hashedRelativePath } from '../protocol/hash-path';
import { statusInRanges } from '../protocol/status-ranges';
import { FormBodyBuilder, rawModeBoundary } from '../protocol/form-body';
import { UploadError } from '../protocol/http-errors';
import { storeErrorToUpload } from '../store/store-errors';
import { parseChecksumHeaders, type ExpectedChecksum } from '../protocol/checksum';
import { SegmentWriter } from '../store/segment-writer';
import { FileDigests, digestFile } from '../store/digests';
import { withLock, type Change, type Lease, type SessionRecord } from '../state/types';
import { makeDirectory, syncDirectory } from '../state/file-session-store';
import { callBackend, BackendUnreachable, type BackendAnswer } from './handoff';
import { receiveBody } from './receive-body';
import { appendFileFields, digestsNeeded, lastRawHeader, rawHeaderValues, renderAddHeaders, variableLookup, type FileVariables } from './variables';
import { relayAnswer, replayCompletion, retryLater, sendRangeAnswer } from './responses';
import type { UploadServices } from './services';
import { progressOf } from '../progress/tracking';

/** The upload headers of a raw (non-multipart) request, validated (§3.1–§3.5 with D1, D10–D13). */
export interface RawUploadHeaders {
  contentType: string;
  fileName: string;
  fieldName: string;
  sessionId: string | null;
  range: SegmentRange | null;
  checksum: ExpectedChecksum | null;
}

export function readRawUploadHeaders(ctx: Context, location: LocationConfig): RawUploadHeaders {
  const req = ctx.req;
  const dispositionValue = lastRawHeader(req, 'content-disposition');
  if (dispositionValue === undefined) throw new UploadError(415, 'a raw upload needs a Content-Disposition header');
  const disposition = parseContentDisposition(dispositionValue.trim());
  if (!disposition.ok) throw new UploadError(400, disposition.reason);

  // Every occurrence is validated, the last one is used (§3.4: the module rejects any invalid one).
  let sessionId: string | null = null;
  for (const value of rawHeaderValues(req, 'session-id', 'x-session-id')) {
    const parsed = parseSessionId(value, location.sessionIdMaxLength);
    if (!parsed.ok) throw new UploadError(400, parsed.reason);
    sessionId = parsed.id;
  }

  let range: SegmentRange | null = null;
  for (const value of rawHeaderValues(req, 'content-range', 'x-content-range')) {
    const parsed = parseContentRange(value.trim());
    if (!parsed.ok) throw new UploadError(400, parsed.reason);
    range = parsed.range;
  }
  if (range && sessionId === null) throw new UploadError(400, 'Content-Range needs a Session-ID (or X-Session-ID) header');

  const checksum = parseChecksumHeaders({
    contentMd5: lastRawHeader(req, 'content-md5'),
    reprDigest: lastRawHeader(req, 'repr-digest'),
    digest: lastRawHeader(req, 'digest'),
  });
  if (checksum && 'error' in checksum) throw new UploadError(400, checksum.error);

  const chunked = /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  const contentLength = chunked ? null : Number(req.headers['content-length'] ?? 0);
  if (range) {
    if (location.maxFileSize > 0 && range.total > location.maxFileSize) {
      throw new UploadError(413, `upload total ${range.total} exceeds upload_max_file_size (${location.maxFileSize} bytes)`);
    }
    const length = range.end - range.start + 1;
    if (contentLength !== null && contentLength !== length) {
      throw new UploadError(416, `Content-Length ${contentLength} does not match the range length ${length}`);
    }
  } else if (contentLength === 0) {
    throw new UploadError(400, 'empty request body');
  }
  return {
    contentType: lastRawHeader(req, 'content-type') ?? '',
    fileName: disposition.fileName,
    fieldName: disposition.fieldName,
    sessionId,
    range,
    checksum: checksum as ExpectedChecksum | null,
  };
}

/** Raw mode entry point: a resumable segment, or a whole file in one request. */
export async function handleRawUpload(ctx: Context, location: LocationConfig, services: UploadServices): Promise<void> {
  const headers = readRawUploadHeaders(ctx, location);
  if (headers.range && headers.sessionId !== null) return handleSegment(ctx, location, services, headers, headers.sessionId, headers.range);
  return handleWholeFile(ctx, location, services, headers);
}

function sessionDataPath(location: LocationConfig, id: string): string {
  return path.join(location.store.dir, hashedRelativePath(id, location.store.levels));
}

/** Opens a session's data file, never truncating it (it holds acknowledged segments, §3.7). */
async function openForWriting(file: string, mode: number, durable: boolean): Promise<FileHandle> {
  try {
    return await fs.open(file, fsConstants.O_RDWR); // every segment but a session's first
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const dir = path.dirname(file);
  await makeDirectory(dir, durable);
  try {
    const created = await fs.open(file, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    // D23: the new directory entry must be durable before any of its bytes are acknowledged.
    if (durable) await syncDirectory(dir);
    return created;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return fs.open(file, fsConstants.O_RDWR);
  }
}

async function openIfExists(file: string): Promise<FileHandle | null> {
  try {
    return await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Streams the body through a SegmentWriter and checks length and checksum (D18, D21). */
async function receiveInto(ctx: Context, location: LocationConfig, writer: SegmentWriter, expectedLength: number | null, checksum: ExpectedChecksum | null, checksumDigests: FileDigests | null): Promise<void> {
  await receiveBody(ctx.req, ctx.res, writer, location);
  if (expectedLength !== null && writer.received !== expectedLength) {
    throw new UploadError(416, `request body has ${writer.received} bytes, the range announces ${expectedLength}`);
  }
  if (checksum && checksumDigests) {
    const actual = checksumDigests.finish()[checksum.algorithm];
    if (actual !== checksum.hex) throw new UploadError(460, `${checksum.header} does not match the received bytes`);
  }
}

export function isStaleHandoff(record: SessionRecord, location: LocationConfig, services: UploadServices): boolean {
  const claim = record.handoff;
  if (!claim) return true;
  if (services.singleInstance(location) && claim.owner !== services.instanceId) return true;
  return Date.now() - claim.startedAt > location.backendConnectTimeoutMs + location.backendReadTimeoutMs + 10_000;
}

type SegmentOutcome =
  | { kind: 'partial'; record: SessionRecord }
  | { kind: 'replay'; record: SessionRecord }
  | { kind: 'handoff'; record: SessionRecord };

/** One resumable segment (§3.7–§3.12 with D3, D4, D6–D9, D23). */
async function handleSegment(ctx: Context, location: LocationConfig, services: UploadServices, headers: RawUploadHeaders, id: string, range: SegmentRange): Promise<void> {
  const sessions = services.sessions(location);
  const locker = services.locker(location);
  const segment = { start: range.start, end: range.end };

  // 1. Find or start the session and claim the segment's bytes. Every write is guarded by the
  // lock's lease: with shared (Redis) state, an instance that lost it writes nothing (fencing).
  let reservation: Lease | null = null;
  const record = await withLock(locker, id, async (lease) => {
    const now = Date.now();
    let current = await sessions.get(id);
    if (current && current.expiresAt <= now) {
      await services.expireSession(current, sessions, [lease]);
      current = undefined;
    }
    if (current && current.total !== range.total) {
      throw new UploadError(409, current.completion
        ? `session ${id} already completed an upload of ${current.total} bytes`
        : `total ${range.total} differs from the session's total ${current.total}`);
    }
    if (current?.handoff && !current.completion && !isStaleHandoff(current, location, services)) {
      throw retryLater('the upload is being handed to the backend; retry shortly');
    }
    if (!current) {
      const dataPath = sessionDataPath(location, id);
      // D9: a new session never inherits bytes of an older upload with the same id.
      await fs.rm(dataPath, { force: true }).catch(storeErrorToUpload);
      current = {
        id, total: range.total, ranges: [], dataPath,
        fileName: headers.fileName, contentType: headers.contentType, fieldName: headers.fieldName,
        createdAt: now, updatedAt: now, expiresAt: now + location.sessionTimeoutMs,
      };
      await sessions.put(current, [lease]);
    }
    reservation = await locker.reserve(id, segment);
    if (!reservation) throw retryLater('the range overlaps a segment of this session still in flight');
    return current;
  });

  // Upload progress (track_uploads): the session's entry starts from what the gateway holds.
  const progress = progressOf(ctx);
  progress?.acknowledge(record.ranges);
  try {
    // 2. Receive the bytes: new ones written, acknowledged ones compared (D4).
    const alreadyComplete = isComplete(record.ranges, record.total);
    let handle: FileHandle | null;
    try {
      handle = alreadyComplete ? await openIfExists(record.dataPath) : await openForWriting(record.dataPath, location.storeAccess, location.fsync);
    } catch (err) {
      storeErrorToUpload(err);
    }
    const checksumDigests = headers.checksum ? new FileDigests([headers.checksum.algorithm]) : null;
    const compare = intersect(record.ranges, segment);
    const digestKey = `${id}\0${record.createdAt}`;
    const fileDigests = alreadyComplete || compare.length > 0 ? null : services.inOrderDigests.claim(digestKey, range.start, digestsNeeded(location));
    const writer = new SegmentWriter({
      handle, start: range.start, expectedLength: range.end - range.start + 1, compare,
      digesters: [...(checksumDigests?.digesters() ?? []), ...(fileDigests?.digesters() ?? [])],
      limitRate: location.limitRate, softLimit: 0, durable: location.fsync,
      onReceived: progress ? (n) => progress.bytes(n) : undefined,
    });
    // A reservation lost mid-stream (shared state: not renewed in time, another instance may own
    // the range now): stop writing at once; the segment is not recorded.
    const held = reservation as Lease | null;
    const stopWriting = () => writer.destroy(retryLater('the reservation of this segment was lost; send it again'));
    if (held?.lost.aborted) stopWriting();
    else held?.lost.addEventListener('abort', stopWriting);
    try {
      await receiveInto(ctx, location, writer, range.end - range.start + 1, headers.checksum, checksumDigests);
    } catch (err) {
      if (fileDigests) services.inOrderDigests.abandon(digestKey);
      throw err;
    } finally {
      held?.lost.removeEventListener('abort', stopWriting);
      await handle?.close();
    }

    // 3. Record the segment (D23: only now is it acknowledged) and decide what answers it: the
    // merge and the hand-off claim are one atomic update of the record, made only while this
    // request still holds the lock and its reservation, so exactly one segment claims the hand-off
    // (D7) whichever instance it reached.
    let outcome: SegmentOutcome;
    try {
      outcome = await withLock(locker, id, (lease) =>
        sessions.update(id, (current): Change<SegmentOutcome> => {
          const now = Date.now();
          if (!current || current.createdAt !== record.createdAt) {
            throw new UploadError(409, `session ${id} expired while the segment was being received`);
          }
          if (isComplete(current.ranges, current.total)) {
            if (current.completion) return { result: { kind: 'replay', record: current } };
            if (current.handoff && !isStaleHandoff(current, location, services)) throw retryLater('the upload is being handed to the backend; retry shortly');
          } else {
            current.ranges = addRange(current.ranges, segment);
            current.expiresAt = now + location.sessionTimeoutMs;
          }
          // The completing segment's headers describe the file (as the module reports them).
          current.fileName = headers.fileName;
          current.contentType = headers.contentType;
          current.fieldName = headers.fieldName;
          current.updatedAt = now;
          const complete = isComplete(current.ranges, current.total);
          if (complete) current.handoff = { owner: services.instanceId, startedAt: now };
          return { record: current, result: { kind: complete ? 'handoff' : 'partial', record: current } };
        }, reservation ? [lease, reservation] : [lease]),
      );
    } catch (err) {
      if (fileDigests) services.inOrderDigests.abandon(digestKey);
      throw err;
    }
    if (fileDigests) services.inOrderDigests.commit(digestKey, range.end);
    progress?.acknowledge(outcome.record.ranges);

    const addHeaders = renderAddHeaders(location, variableLookup(ctx.req, segmentVariables(outcome.record, range, 1)));
    if (outcome.kind === 'partial') return sendRangeAnswer(ctx, 201, outcome.record, location, addHeaders);
    if (outcome.kind === 'replay') {
      progress?.completed(outcome.record.completion!.status);
      return replayCompletion(ctx, outcome.record.completion!, addHeaders);
    }
    await reservation!.release();
    reservation = null;
    return await handOffSession(ctx, location, services, outcome.record, range, addHeaders);
  } finally {
    await (reservation as Lease | null)?.release();
  }
}

function segmentVariables(record: SessionRecord, range: SegmentRange, fileNumber: number): FileVariables {
  return {
    fieldName: record.fieldName,
    fileName: record.fileName,
    contentType: record.contentType,
    tmpPath: record.dataPath,
    fileNumber,
    contentRange: `bytes ${range.start}-${range.end}/${range.total}`,
  };
}

/** Completion: the generated form goes to the backend exactly once (D6, D7). */
async function handOffSession(ctx: Context, location: LocationConfig, services: UploadServices, record: SessionRecord, range: SegmentRange, addHeaders: Array<[string, string]>): Promise<void> {
  const sessions = services.sessions(location);
  let answer: BackendAnswer;
  try {
    const boundary = rawModeBoundary(services.counter.take());
    const vars = segmentVariables(record, range, 1);
    const form = new FormBodyBuilder(boundary);
    const lookup = variableLookup(ctx.req, vars);
    appendFileFields(form, location.setFormFields, lookup);
    const resume = services.inOrderDigests.take(`${record.id}\0${record.createdAt}`);
    vars.digests = await digestFile(record.dataPath, digestsNeeded(location), resume);
    vars.size = record.total;
    appendFileFields(form, location.aggregateFormFields, lookup);
    checkOutputLimit(form, location);
    answer = await callBackend(location, ctx.req, form.finish(), `multipart/form-data; boundary=${boundary}`);
  } catch (err) {
    // D7: keep the complete upload; the client's retry of any segment re-attempts the hand-off. A
    // failed attempt never holds the session longer than itself: its claim goes whatever failed.
    const claim = record.handoff;
    const releaseClaim = withLock(services.locker(location), record.id, (lease) =>
      sessions.update(record.id, (current): Change<void> => {
        if (!current?.handoff || current.handoff.owner !== claim?.owner || current.handoff.startedAt !== claim.startedAt) return { result: undefined };
        delete current.handoff;
        return { record: current, result: undefined };
      }, [lease]),
    );
    if (!(err instanceof BackendUnreachable)) {
      await releaseClaim.catch(() => undefined);
      throw err;
    }
    await releaseClaim;
    services.log.warn({ session: record.id, err: err.message }, 'backend unreachable; upload kept for a retry');
    throw retryLater(`the backend is unreachable (${err.message}); the upload is kept, retry to hand it off`);
  }

  progressOf(ctx)?.completed(answer.status);
  const fileRemoved = statusInRanges(answer.status, location.cleanup);
  if (fileRemoved) await fs.rm(record.dataPath, { force: true });
  await withLock(services.locker(location), record.id, (lease) =>
    sessions.update(record.id, (stored): Change<void> => {
      // The first stored answer stays (a second hand-off can only follow a claim that went stale).
      if (stored?.completion) return { result: undefined };
      const current = stored ?? record;
      const now = Date.now();
      delete current.handoff;
      current.completion = {
        status: answer.status,
        statusMessage: answer.statusMessage,
        headers: answer.headers,
        bodyBase64: answer.body ? answer.body.toString('base64') : null,
        completedAt: now,
        fileRemoved,
      };
      current.expiresAt = now + location.completedRetentionMs;
      return { record: current, result: undefined };
    }, [lease]),
  );
  relayAnswer(ctx, answer, addHeaders);
}

function checkOutputLimit(form: FormBodyBuilder, location: LocationConfig): void {
  if (location.maxOutputBodyLen > 0 && form.length > location.maxOutputBodyLen) {
    throw new UploadError(413, `generated form (${form.length} bytes) exceeds upload_max_output_body_len (${location.maxOutputBodyLen})`);
  }
}

/** A whole file in one request: with a Session-ID into the session's file, else a 10-digit temporary name (§3.6). */
async function handleWholeFile(ctx: Context, location: LocationConfig, services: UploadServices, headers: RawUploadHeaders): Promise<void> {
  // The module takes the boundary number before it creates the file (§4.7).
  const boundary = rawModeBoundary(services.counter.take());
  let file: { path: string; handle: FileHandle };
  try {
    if (headers.sessionId !== null) {
      const id = headers.sessionId;
      const sessions = services.sessions(location);
      await withLock(services.locker(location), id, async (lease) => {
        const existing = await sessions.get(id);
        if (!existing) return;
        // An expired session goes now: the sweep would otherwise delete this upload's file later.
        if (existing.expiresAt <= Date.now()) return services.expireSession(existing, sessions, [lease]);
        // A completed upload is kept (and replayed, D7) for the retention time: never overwrite it.
        throw new UploadError(409, existing.completion
          ? `session ${id} completed an upload that is kept until upload_completed_retention ends`
          : `session ${id} has a resumable upload in progress`);
      });
      const target = sessionDataPath(location, headers.sessionId);
      await fs.mkdir(path.dirname(target), { recursive: true });
      // Q10 fixed: the file starts empty, no stale tail from an older upload.
      file = { path: target, handle: await fs.open(target, 'w', location.storeAccess) };
    } else {
      file = await services.counter.createFile(location.store.dir, location.store.levels, location.storeAccess);
    }
  } catch (err) {
    storeErrorToUpload(err);
  }

  const digests = new FileDigests(digestsNeeded(location));
  const checksumDigests = headers.checksum ? new FileDigests([headers.checksum.algorithm]) : null;
  const progress = progressOf(ctx);
  const writer = new SegmentWriter({
    handle: file.handle, start: 0, expectedLength: null, compare: [],
    digesters: [...digests.digesters(), ...(checksumDigests?.digesters() ?? [])],
    limitRate: location.limitRate, softLimit: location.maxFileSize, durable: location.fsync,
    onReceived: progress ? (n) => progress.bytes(n) : undefined,
  });
  try {
    await receiveInto(ctx, location, writer, null, headers.checksum, checksumDigests);
  } catch (err) {
    await file.handle.close();
    await fs.rm(file.path, { force: true });
    throw err;
  }
  await file.handle.close();
  if (writer.received === 0) {
    await fs.rm(file.path, { force: true });
    throw new UploadError(400, 'empty request body');
  }

  const vars: FileVariables = {
    fieldName: headers.fieldName, fileName: headers.fileName, contentType: headers.contentType,
    tmpPath: file.path, fileNumber: 1, contentRange: 'bytes 0-0/0',
  };
  const lookup = variableLookup(ctx.req, vars);
  const form = new FormBodyBuilder(boundary);
  const beforeFile = form.checkpoint();
  appendFileFields(form, location.setFormFields, lookup);
  if (writer.overLimit) {
    // upload_max_file_size is soft here (§3.16): the file is dropped, the form still goes out.
    form.rollback(beforeFile);
    await fs.rm(file.path, { force: true });
  } else {
    vars.digests = digests.finish();
    vars.size = writer.received;
    vars.contentRange = `bytes 0-${writer.received}/${writer.received}`;
    appendFileFields(form, location.aggregateFormFields, lookup);
  }
  const addHeaders = renderAddHeaders(location, lookup);
  try {
    checkOutputLimit(form, location);
  } catch (err) {
    await fs.rm(file.path, { force: true });
    throw err;
  }

  let answer: BackendAnswer;
  try {
    answer = await callBackend(location, ctx.req, form.finish(), `multipart/form-data; boundary=${boundary}`);
  } catch (err) {
    if (!(err instanceof BackendUnreachable)) throw err;
    if (statusInRanges(502, location.cleanup)) await fs.rm(file.path, { force: true });
    throw new UploadError(502, `the backend is unreachable (${err.message})`);
  }
  if (statusInRanges(answer.status, location.cleanup)) await fs.rm(file.path, { force: true });
  relayAnswer(ctx, answer, addHeaders);
}
