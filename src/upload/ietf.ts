/**
 * The IETF draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload), interop
 * version 8, and versions 5 and 6 as tus-js-client's `ietf-draft-03` and `ietf-draft-05` speak
 * them, on the gateway's sessions (see `resumable-protocols.ts`).
 *
 * - Creation: a POST (or PUT) to the location with `Upload-Complete`; for version 8 the upload's
 *   URL goes out at once in a `104 Upload Resumption Supported` interim answer (before the body
 *   is read), with `Upload-Limit`. The whole file in one request is handed off as soon as it is in.
 * - Offset retrieval: HEAD (or GET) on the upload's URL: `204`, `Upload-Offset`, `Upload-Complete`,
 *   `Upload-Length`, `Upload-Limit`, `Cache-Control: no-store`.
 * - Append: PATCH with `Upload-Offset`, `Upload-Complete` (and `application/partial-upload` from
 *   version 6 on); a wrong offset is `409` with the right one in `Upload-Offset`.
 * - Cancellation: DELETE → `204`.
 * The answer that completes an upload is the backend's (`upload_pass`), with `Upload-Complete: ?1`.
 * Every answer about an upload carries `Upload-Offset` (tus-js-client needs it in its draft modes).
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { CONTROL_CHARACTERS, parseContentDisposition, stripPath } from '../protocol/content-disposition';
import { HttpError } from '../protocol/http-errors';
import {
  IETF_CURRENT_INTEROP_VERSION,
  parseUploadComplete,
  uploadPath,
  type IetfInteropVersion,
} from '../protocol/tus-headers';
import { type SessionRecord } from '../session/model';
import { contiguousEnd } from '../session/rules';
import { answerAppend as answerAppendWith, appendToSession, type AppendResult, type Header } from './append';
import { writeInterim } from './interim';
import { answerEmpty, byteCountHeader, creationId, largestTotal, methodOf, resumeOffset, terminateUpload, uploadLimit, withHeaders, type UploadTarget } from './resumable-protocols';
import { declaredLength, lastRawHeader } from '../http/request';
import type { UploadServices } from './services';


/** The draft's content type of an append's body (required from interop version 6 on). */
const PARTIAL_UPLOAD = 'application/partial-upload';

export async function handleIetf(ctx: Context, location: LocationConfig, services: UploadServices, version: IetfInteropVersion, target: UploadTarget): Promise<void> {
  const method = methodOf(ctx);
  if (target.kind === 'none') throw new HttpError(404, 'no upload at this URL');
  if (target.kind === 'endpoint') {
    if (method !== 'POST' && method !== 'PUT') throw new HttpError(405, `method ${method} cannot create an upload`, { Allow: 'POST, PUT, OPTIONS' });
    return create(ctx, location, services, version);
  }
  const { id } = target;
  try {
    if (method === 'HEAD' || method === 'GET') return await offsetRetrieval(ctx, location, services, version, id);
    if (method === 'PATCH') return await append(ctx, location, services, version, id);
    if (method === 'DELETE') return await terminateUpload(ctx, location, services, id);
    throw new HttpError(405, `method ${method} not allowed on an upload`, { Allow: 'HEAD, GET, PATCH, DELETE, OPTIONS' });
  } catch (err) {
    // A wrong offset: the draft wants the right one with the 409.
    if (err instanceof HttpError && err.status === 409) {
      const record = await services.sessions(location).status(id).catch(() => undefined);
      if (record) throw withHeaders(err, { 'Upload-Offset': String(offsetOf(record, version)), 'Upload-Complete': '?0' });
    }
    throw err;
  }
}

function uploadComplete(ctx: Context): boolean {
  const value = lastRawHeader(ctx.req, 'upload-complete');
  if (value === undefined) throw new HttpError(400, 'the request needs Upload-Complete');
  const parsed = parseUploadComplete(value);
  if (!parsed.ok) throw new HttpError(400, parsed.reason);
  return parsed.value;
}

/**
 * The offset reported: version 8 reports every byte it holds (a complete file awaiting its
 * hand-off is finished by an append of no bytes with `Upload-Complete: ?1`); tus-js-client's draft
 * modes resume as tus does (`resumeOffset`).
 */
function offsetOf(record: SessionRecord, version: IetfInteropVersion): number {
  return version === IETF_CURRENT_INTEROP_VERSION ? contiguousEnd(record) : resumeOffset(record);
}

function stateHeaders(location: LocationConfig, record: SessionRecord, version: IetfInteropVersion): Header[] {
  const headers: Header[] = [['Upload-Complete', record.completion ? '?1' : '?0'], ['Upload-Offset', String(offsetOf(record, version))]];
  if (record.total !== null) headers.push(['Upload-Length', String(record.total)]);
  headers.push(['Upload-Limit', uploadLimit(location, record)]);
  return headers;
}

function answerAppend(ctx: Context, location: LocationConfig, services: UploadServices, version: IetfInteropVersion, result: AppendResult, start: number, created: Header[]): Promise<void> {
  const done: Header[] = [['Upload-Complete', '?1'], ['Upload-Offset', String(result.outcome.record.total)]];
  return answerAppendWith(ctx, location, services, result, start, { created, done, pending: (record) => stateHeaders(location, record, version) });
}

/** How the creation request describes the file: Content-Disposition's name (the draft recommends `inline`), else the upload's id. */
function describedFile(ctx: Context, id: string): { fileName: string; contentType: string; fieldName: string } {
  let fileName = id;
  let fieldName = '';
  const disposition = lastRawHeader(ctx.req, 'content-disposition');
  if (disposition !== undefined) {
    // `inline` is what the draft recommends; the parser knows the module's two types.
    const parsed = parseContentDisposition(disposition.trim().replace(/^inline\b/i, 'attachment'));
    if (!parsed.ok) throw new HttpError(400, parsed.reason);
    fileName = parsed.fileName || id;
    fieldName = parsed.fieldName;
  }
  const type = lastRawHeader(ctx.req, 'content-type')?.trim() ?? '';
  const contentType = type === '' || type.toLowerCase() === PARTIAL_UPLOAD || CONTROL_CHARACTERS.test(type) ? 'application/octet-stream' : type;
  return { fileName: stripPath(fileName), contentType, fieldName };
}

async function create(ctx: Context, location: LocationConfig, services: UploadServices, version: IetfInteropVersion): Promise<void> {
  const completes = uploadComplete(ctx);
  const declared = byteCountHeader(ctx, 'upload-length');
  const length = declaredLength(ctx.req);
  if (completes && declared !== null && length !== null && declared !== length) {
    throw new HttpError(400, `inconsistent length values for upload: Upload-Length ${declared}, Content-Length ${length} with Upload-Complete: ?1`);
  }
  const total = declared ?? (completes ? length : null);
  const limits = { 'Upload-Limit': uploadLimit(location, null) };
  if (total === 0) throw withHeaders(new HttpError(400, 'an empty file cannot be uploaded'), limits);
  if (total !== null && total > largestTotal(location, services)) {
    throw withHeaders(new HttpError(413, `the upload's length ${total} exceeds its max-size`), limits);
  }
  const id = creationId(ctx, location);
  const location_ = uploadPath(location.path, id);
  let announced = false;
  let result: AppendResult;
  try {
    result = await appendToSession(ctx, location, services, {
      id, start: 0, length, total, completes, checksum: null,
      declare: { meta: describedFile(ctx, id) },
      admitted: () => {
        // The upload exists: its URL goes out before the body is read (version 8 only; the
        // draft forbids a 104 to other versions).
        if (version !== IETF_CURRENT_INTEROP_VERSION) return;
        announced = writeInterim(ctx.req, ctx.res, 104, 'Upload Resumption Supported', [
          ['Location', location_],
          ['Upload-Draft-Interop-Version', String(IETF_CURRENT_INTEROP_VERSION)],
          ['Upload-Limit', uploadLimit(location, null)],
        ]);
      },
    });
  } catch (err) {
    // Without the 104 the client never learnt the URL: the upload goes. After it, the client may resume.
    if (!announced) await services.sessions(location).terminate(id, services.policy(location)).catch(() => undefined);
    throw withHeaders(err, announced ? { Location: location_, 'Upload-Complete': '?0' } : {});
  }
  await answerAppend(ctx, location, services, version, result, 0, [['Location', location_]]);
}

async function offsetRetrieval(ctx: Context, location: LocationConfig, services: UploadServices, version: IetfInteropVersion, id: string): Promise<void> {
  const record = await services.sessions(location).status(id);
  if (!record) throw new HttpError(404, `unknown upload ${id}`);
  answerEmpty(ctx, 204, [...stateHeaders(location, record, version), ['Cache-Control', 'no-store']]);
}

async function append(ctx: Context, location: LocationConfig, services: UploadServices, version: IetfInteropVersion, id: string): Promise<void> {
  const type = lastRawHeader(ctx.req, 'content-type')?.trim().toLowerCase();
  if (version !== 5 && type !== PARTIAL_UPLOAD) throw new HttpError(415, `an append needs Content-Type: ${PARTIAL_UPLOAD}`);
  const start = byteCountHeader(ctx, 'upload-offset');
  if (start === null) throw new HttpError(400, 'an append needs Upload-Offset');
  const completes = uploadComplete(ctx);
  const length = declaredLength(ctx.req);
  const result = await appendToSession(ctx, location, services, { id, start, length, total: byteCountHeader(ctx, 'upload-length'), completes, checksum: null });
  await answerAppend(ctx, location, services, version, result, start, []);
}
