/**
 * tus 1.0.0 (https://tus.io/protocols/resumable-upload) with the extensions creation,
 * creation-with-upload, creation-defer-length, termination, expiration, checksum and
 * concatenation, on the gateway's sessions (see `resumable-protocols.ts`).
 *
 * Answers carry `Tus-Resumable: 1.0.0`. A PATCH that completes the file is handed off to
 * `upload_pass` like a last segment, and the backend's answer is relayed with `Upload-Offset`
 * (tus-js-client and Uppy take any 2xx; @tus/server lets a server answer so too).
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import {
  fileFromMetadata,
  httpDate,
  parseUploadChecksum,
  parseUploadConcat,
  parseUploadMetadata,
  TUS_CONTENT_TYPE,
  TUS_VERSION,
  uploadIdFromUrl,
  uploadPath,
} from '../protocol/tus-headers';
import { type SessionRecord } from '../session/model';
import { isFileComplete } from '../session/rules';
import { concatenateInto } from '../store/concatenate';
import { storageError } from '../store/store-errors';
import { answerAppend as answerAppendWith, appendToSession, type AppendResult, type Header } from './append';
import { sessionDataPath } from './raw-upload';
import { answerEmpty, byteCountHeader, concatenationId, creationId, methodOf, resumeOffset, terminateUpload, withHeaders, type UploadTarget } from './resumable-protocols';
import { declaredLength, lastRawHeader } from '../http/request';
import type { UploadServices } from './services';


export async function handleTus(ctx: Context, location: LocationConfig, services: UploadServices, target: UploadTarget): Promise<void> {
  try {
    const version = lastRawHeader(ctx.req, 'tus-resumable')?.trim();
    if (version !== TUS_VERSION) throw new HttpError(412, `Tus-Resumable ${version ?? '(none)'} is not supported; this server speaks ${TUS_VERSION}`, { 'Tus-Version': TUS_VERSION });
    const method = methodOf(ctx);
    if (target.kind === 'none') throw new HttpError(404, 'no upload at this URL');
    if (target.kind === 'endpoint') {
      if (method !== 'POST') throw new HttpError(405, `method ${method} not allowed on the creation URL`, { Allow: 'POST, OPTIONS' });
      await create(ctx, location, services);
    } else if (method === 'HEAD') {
      await head(ctx, location, services, target.id);
    } else if (method === 'PATCH') {
      await patch(ctx, location, services, target.id);
    } else if (method === 'DELETE') {
      await terminateUpload(ctx, location, services, target.id);
    } else {
      throw new HttpError(405, `method ${method} not allowed on an upload`, { Allow: 'HEAD, PATCH, DELETE, OPTIONS' });
    }
    ctx.set('Tus-Resumable', TUS_VERSION);
  } catch (err) {
    throw withHeaders(err, { 'Tus-Resumable': TUS_VERSION });
  }
}

function checksumOf(ctx: Context) {
  const value = lastRawHeader(ctx.req, 'upload-checksum');
  if (value === undefined) return null;
  const parsed = parseUploadChecksum(value);
  if (!parsed.ok) throw new HttpError(400, parsed.reason);
  return parsed.value;
}

function checkLength(location: LocationConfig, services: UploadServices, total: number): void {
  if (total === 0) throw new HttpError(400, 'an empty file cannot be uploaded');
  if (location.maxFileSize > 0 && total > location.maxFileSize) throw new HttpError(413, `Upload-Length ${total} exceeds upload_max_file_size (${location.maxFileSize} bytes)`);
  if (total > services.maxFileSize(location)) throw new HttpError(413, `Upload-Length ${total} is larger than the store's file system can hold`);
}

/** Headers every answer about an upload carries: where it continues, and until when (expiration). */
function stateHeaders(record: SessionRecord): Header[] {
  const headers: Header[] = [['Upload-Offset', String(resumeOffset(record))]];
  if (!record.completion) headers.push(['Upload-Expires', httpDate(record.expiresAt)]);
  return headers;
}

/** Answers a PATCH or a creation with data: 204 (201 for a creation) while bytes are missing, else the hand-off's answer. */
function answerAppend(ctx: Context, location: LocationConfig, services: UploadServices, result: AppendResult, start: number, created: Header[]): Promise<void> {
  return answerAppendWith(ctx, location, services, result, start, { created, done: [['Upload-Offset', String(result.outcome.record.total)]], pending: stateHeaders });
}

async function create(ctx: Context, location: LocationConfig, services: UploadServices): Promise<void> {
  const rawMetadata = lastRawHeader(ctx.req, 'upload-metadata');
  const metadata = parseUploadMetadata(rawMetadata ?? '');
  if (!metadata.ok) throw new HttpError(400, metadata.reason);
  const concatValue = lastRawHeader(ctx.req, 'upload-concat');
  const concat = concatValue === undefined ? null : parseUploadConcat(concatValue);
  if (concat && !concat.ok) throw new HttpError(400, concat.reason);
  if (concat?.value.kind === 'final') return createFinal(ctx, location, services, concat.value.urls, metadata.value, rawMetadata);

  const total = byteCountHeader(ctx, 'upload-length');
  const deferred = lastRawHeader(ctx.req, 'upload-defer-length');
  if (deferred !== undefined && deferred.trim() !== '1') throw new HttpError(400, 'Upload-Defer-Length must be 1');
  if ((total === null) === (deferred === undefined)) throw new HttpError(400, 'a creation needs either Upload-Length or Upload-Defer-Length: 1');
  if (total !== null) checkLength(location, services, total);
  const length = declaredLength(ctx.req);
  if (length !== 0 && lastRawHeader(ctx.req, 'content-type')?.trim().toLowerCase() !== TUS_CONTENT_TYPE) {
    throw new HttpError(415, `a creation with data needs Content-Type: ${TUS_CONTENT_TYPE}`);
  }
  const id = creationId(ctx, location);
  const file = fileFromMetadata(metadata.value, id);
  if (!file.ok) throw new HttpError(400, file.reason);
  const result = await appendToSession(ctx, location, services, {
    id, start: 0, length, total, completes: false, checksum: checksumOf(ctx),
    declare: { meta: { ...file.value, fieldName: '' }, concat: concat ? 'partial' : undefined, metadata: rawMetadata },
  }).catch(async (err) => {
    // The client never learnt this upload's URL: it goes.
    await services.sessions(location).terminate(id, services.policy(location)).catch(() => undefined);
    throw err;
  });
  await answerAppend(ctx, location, services, result, 0, [['Location', uploadPath(location.path, id)]]);
}

async function head(ctx: Context, location: LocationConfig, services: UploadServices, id: string): Promise<void> {
  const record = await services.sessions(location).status(id);
  if (!record) throw new HttpError(404, `unknown upload ${id}`);
  const headers: Header[] = [['Cache-Control', 'no-store'], ...stateHeaders(record)];
  headers.push(record.total === null ? ['Upload-Defer-Length', '1'] : ['Upload-Length', String(record.total)]);
  if (record.metadata) headers.push(['Upload-Metadata', record.metadata]);
  if (record.concat === 'partial') headers.push(['Upload-Concat', 'partial']);
  else if (record.concat?.startsWith('final;')) {
    headers.push(['Upload-Concat', `final;${record.concat.slice(6).split(' ').map((part) => uploadPath(location.path, part)).join(' ')}`]);
  }
  answerEmpty(ctx, 200, headers);
}

async function patch(ctx: Context, location: LocationConfig, services: UploadServices, id: string): Promise<void> {
  if (lastRawHeader(ctx.req, 'content-type')?.trim().toLowerCase() !== TUS_CONTENT_TYPE) throw new HttpError(415, `PATCH needs Content-Type: ${TUS_CONTENT_TYPE}`);
  const start = byteCountHeader(ctx, 'upload-offset');
  if (start === null) throw new HttpError(400, 'PATCH needs Upload-Offset');
  const total = byteCountHeader(ctx, 'upload-length');
  if (total !== null) checkLength(location, services, total);
  const result = await appendToSession(ctx, location, services, { id, start, length: declaredLength(ctx.req), total, completes: false, checksum: checksumOf(ctx) });
  await answerAppend(ctx, location, services, result, start, []);
}

/**
 * `Upload-Concat: final;…`: the partial uploads (complete, of this location) are assembled into a
 * new upload by the kernel (`concatenateInto`), which is then handed off as any complete upload.
 * Its id derives from the partials, so a repeated request is the same upload (replayed, D7). The
 * partials are then answered as consumed and their files removed; they stay known (complete) for
 * `upload_completed_retention`, so a client retrying the whole concatenation finds them done.
 */
async function createFinal(ctx: Context, location: LocationConfig, services: UploadServices, urls: string[], metadata: Map<string, string>, rawMetadata: string | undefined): Promise<void> {
  if (lastRawHeader(ctx.req, 'upload-length') !== undefined) throw new HttpError(400, 'a final upload has no Upload-Length (it is the sum of its partial uploads)');
  if (declaredLength(ctx.req) !== 0) throw new HttpError(400, 'a final upload has no body');
  const engine = services.sessions(location);
  const policy = services.policy(location);
  const ids = urls.map((url) => {
    const id = uploadIdFromUrl(location.path, url, location.sessionIdMaxLength);
    if (id === null) throw new HttpError(400, `Upload-Concat names ${url}, which is no upload of this location`);
    return id;
  });
  const partials = await Promise.all(ids.map(async (id) => {
    const record = await engine.status(id);
    if (!record || record.concat !== 'partial') throw new HttpError(400, `${uploadPath(location.path, id)} is not a partial upload (Upload-Concat: partial)`);
    if (!isFileComplete(record)) throw new HttpError(400, `the partial upload ${uploadPath(location.path, id)} is not complete`);
    return record;
  }));
  const total = partials.reduce((n, p) => n + p.total!, 0);
  checkLength(location, services, total);
  const id = concatenationId(location, ids);
  const file = fileFromMetadata(metadata, id);
  if (!file.ok) throw new HttpError(400, file.reason);
  const meta = { ...file.value, fieldName: '' };
  const ticket = await engine.begin({ id, start: 0, end: total - 1, total, meta, dataPath: sessionDataPath(location, id), declare: { concat: `final;${ids.join(' ')}`, metadata: rawMetadata } }, policy);
  let outcome;
  try {
    // A repeated request finds the bytes acknowledged: nothing is copied again.
    if (!isFileComplete(ticket.record)) {
      if (partials.some((p) => p.completion)) throw new HttpError(400, 'a partial upload was already consumed by another concatenation');
      if (!ticket.file) throw new HttpError(409, `the data file of upload ${id} is gone`);
      ticket.fence.check();
      await concatenateInto(ticket.record.dataPath, ticket.record.fileId!, partials.map((p) => p.dataPath)).catch((err) => {
        throw storageError(err);
      });
      if (policy.durable) await ticket.file.flush();
    }
    outcome = await engine.commit(ticket, { total, meta, end: total - 1 }, policy);
  } catch (err) {
    await engine.abort(ticket, policy).catch(() => undefined);
    throw err;
  }
  // The partials are consumed: answered, their files removed (the final upload holds the bytes).
  const consumed = { status: 204, statusMessage: 'No Content', headers: [['Upload-Concat', `final;${uploadPath(location.path, id)}`]] as Header[], bodyBase64: '', completedAt: Date.now(), fileRemoved: true };
  for (const partial of partials) {
    if (!partial.completion) await engine.finishHandoff(partial, { owner: 'concatenation', startedAt: consumed.completedAt }, consumed, policy);
  }
  await answerAppend(ctx, location, services, { outcome, received: total }, 0, [['Location', uploadPath(location.path, id)]]);
}
