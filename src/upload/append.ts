/**
 * A request body appended to a session at an offset: the one way tus and the IETF draft write
 * bytes (creation with data, PATCH). It is a segment like the module's (begin → stream into the
 * data file, acknowledged bytes compared, never rewritten → durable → commit), so sessions,
 * journals, Redis, progress and the exactly-once hand-off are the ones segments use. The caller
 * answers the outcome with its protocol's headers through `answerAppend`.
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import { intersect } from '../protocol/range-set';
import type { ExpectedChecksum } from '../protocol/checksum';
import { WHOLE_FILE_UNKNOWN, type FileMeta, type SessionRecord } from '../session/model';
import type { CommitOutcome, SegmentTicket } from '../state/engine';
import { bodyError } from '../store/store-errors';
import { FileDigests } from '../store/digests';
import { receiveBody } from './receive-body';
import { digestsNeeded, renderAddHeaders, variableLookup } from './variables';
import { checksumCheck, completeSession, segmentWriter, sessionDataPath, sessionVariables } from './raw-upload';
import { replayCompletion } from './responses';
import { uploadObserver } from './observer';
import { answerEmpty, largestTotal } from './resumable-protocols';
import type { UploadServices } from './services';

export interface AppendRequest {
  id: string;
  /** Offset of the body's first byte. */
  start: number;
  /** Body bytes announced (Content-Length); null for a chunked body; 0 for none. */
  length: number | null;
  /** The upload's length as this request states it (tus `Upload-Length`, the draft's), else null. */
  total: number | null;
  /** The draft's `Upload-Complete: ?1`: the body is the rest of the file (its end is the length). */
  completes: boolean;
  checksum: ExpectedChecksum | null;
  /** A creation request: the declared session it starts (how it describes the file, tus concatenation, tus metadata). */
  declare?: { meta: FileMeta; concat?: string; metadata?: string };
  /** Called once the session admitted the request (before the body is read): the draft's `104` goes out here. */
  admitted?: (ticket: SegmentTicket) => void;
}

export interface AppendResult {
  outcome: CommitOutcome;
  /** Body bytes received. */
  received: number;
}

const NO_META: FileMeta = { fileName: '', contentType: '', fieldName: '' };

function recordMeta(record: SessionRecord): FileMeta {
  return { fileName: record.fileName, contentType: record.contentType, fieldName: record.fieldName };
}

/** Streams the request body into the session at `request.start` and acknowledges it. */
export async function appendToSession(ctx: Context, location: LocationConfig, services: UploadServices, request: AppendRequest): Promise<AppendResult> {
  const engine = services.sessions(location);
  const policy = services.policy(location);
  const { id, start, length } = request;
  const total = request.total ?? (request.completes && length !== null ? start + length : null);
  const ticket = await engine.begin(
    {
      id, start, total,
      end: length === null ? WHOLE_FILE_UNKNOWN.end : start + length - 1,
      meta: request.declare?.meta ?? NO_META,
      dataPath: sessionDataPath(location, id),
      ...(request.declare ? { declare: { concat: request.declare.concat, metadata: request.declare.metadata } } : { append: true }),
    },
    policy,
  );
  const progress = uploadObserver(ctx);
  progress?.began?.({ session: true, created: ticket.created });
  progress?.acknowledged(ticket.record.ranges);
  let inOrder: FileDigests | null = null;
  let received = 0;
  try {
    request.admitted?.(ticket);
    if (length !== 0) {
      const compare = intersect(ticket.record.ranges, ticket.range);
      inOrder = ticket.file === null || compare.length > 0 ? null : services.inOrderDigests.claim(ticket.record, start, digestsNeeded(location));
      const checksum = checksumCheck(request.checksum);
      // A body of unknown length may fill the reserved range, or (length deferred) what the store takes.
      const room = ticket.range.end === WHOLE_FILE_UNKNOWN.end
        ? largestTotal(location, services) - start
        : ticket.range.end - start + 1;
      const { writer, unfence } = segmentWriter(ticket, location, policy.durable, progress, {
        start, expectedLength: length ?? Math.max(0, room), compare, softLimit: 0,
        digesters: [...checksum.digesters, ...(inOrder?.digesters() ?? [])],
      });
      try {
        await receiveBody(ctx.req, ctx.res, writer, location);
      } finally {
        unfence();
      }
      received = writer.received;
      if (length !== null && received !== length) throw new HttpError(400, `request body has ${received} bytes, Content-Length announced ${length}`);
      checksum.verify();
    }
    const outcome = await engine.commit(ticket, {
      total: total ?? (request.completes ? start + received : ticket.record.total),
      meta: recordMeta(ticket.record),
      end: start + received - 1,
    }, policy);
    if (inOrder) services.inOrderDigests.commit(ticket.record, start + received - 1);
    if (received > 0) progress?.committed?.();
    progress?.acknowledged(outcome.record.ranges);
    return { outcome, received };
  } catch (err) {
    if (inOrder) services.inOrderDigests.abandon(ticket.record);
    await engine.abort(ticket, policy).catch((e) => services.log.warn({ session: id, err: (e as Error).message }, 'releasing a failed append failed'));
    throw bodyError(err);
  }
}

/** A response header, as the protocols list them. */
export type Header = [string, string];

/**
 * Answers an append in a protocol's terms: while bytes are missing, `201` for a creation (with
 * `created`) or `204`, with the upload's `pending` headers; a completed file is handed off to
 * `upload_pass` (once, as a segment's would be: the same form fields) and the backend's answer
 * relayed with `created` and `done`, or a stored answer replayed.
 */
export async function answerAppend(
  ctx: Context, location: LocationConfig, services: UploadServices, result: AppendResult, start: number,
  headers: { created: Header[]; done: Header[]; pending(record: SessionRecord): Header[] },
): Promise<void> {
  const { outcome, received } = result;
  const record = outcome.record;
  if (outcome.kind === 'partial') return answerEmpty(ctx, headers.created.length > 0 ? 201 : 204, [...headers.created, ...headers.pending(record)]);
  const end = start + received - 1;
  // $upload_content_range: this request's bytes; a request without bytes names the whole file.
  const contentRange = received > 0 ? `bytes ${start}-${end}/${record.total ?? end + 1}` : `bytes 0-${(record.total ?? 1) - 1}/${record.total ?? 0}`;
  const vars = sessionVariables(record, contentRange);
  if (outcome.kind === 'replay') {
    uploadObserver(ctx)?.completed(record.completion!.status);
    replayCompletion(ctx, record.completion!, renderAddHeaders(location, variableLookup(ctx.req, vars)));
  } else {
    await completeSession(ctx, location, services, record, outcome.claim, vars, contentRange, null);
  }
  for (const [name, value] of [...headers.created, ...headers.done]) ctx.set(name, value);
}
