import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { formatRangeList } from '../protocol/range-set';
import type { CompletionRecord, SessionRecord } from '../session/model';
import type { BackendAnswer } from './handoff';

function applyHeaders(ctx: Context, headers: ReadonlyArray<readonly [string, string]>): void {
  for (const [name, value] of headers) ctx.append(name, value);
}

/**
 * The module's 201 (§3.10): `upload_add_header` headers, then `Range`, and the same text as the
 * body; no Content-Type, no trailing newline, truncated like the module (Q7).
 */
export function sendRangeAnswer(ctx: Context, status: number, record: SessionRecord, location: LocationConfig, addHeaders: Array<[string, string]>): void {
  const text = formatRangeList(record.ranges, record.total ?? 0, location.rangeHeaderBufferSize);
  ctx.status = status;
  applyHeaders(ctx, addHeaders);
  if (text) ctx.set('Range', text);
  ctx.body = Buffer.from(text, 'latin1');
  ctx.remove('Content-Type');
}

/** D22: the session's ranges, never truncated, plus totals and state. */
export function sendSessionStatus(ctx: Context, record: SessionRecord, state: 'incomplete' | 'handing-off' | 'complete'): void {
  const text = record.total === null ? '' : formatRangeList(record.ranges, record.total);
  ctx.status = 200;
  if (text) ctx.set('Range', text);
  if (record.total !== null) ctx.set('X-Upload-Total', String(record.total));
  ctx.set('X-Upload-State', state);
  if (record.completion) ctx.set('X-Upload-Backend-Status', String(record.completion.status));
  ctx.body = Buffer.from(text, 'latin1');
  ctx.remove('Content-Type');
}

/** The backend's answer goes back as is: status, reason phrase, headers, body (§5.4). */
export function relayAnswer(ctx: Context, answer: BackendAnswer, addHeaders: Array<[string, string]>): void {
  ctx.status = answer.status;
  if (answer.statusMessage) ctx.message = answer.statusMessage;
  applyHeaders(ctx, addHeaders);
  applyHeaders(ctx, answer.headers);
  const hasType = answer.headers.some(([name]) => name.toLowerCase() === 'content-type');
  ctx.body = answer.body ?? answer.stream;
  if (!hasType) ctx.remove('Content-Type');
}

/** D7: a repeated segment of a completed upload gets the stored answer, without a second hand-off. */
export function replayCompletion(ctx: Context, completion: CompletionRecord, addHeaders: Array<[string, string]>): void {
  relayAnswer(
    ctx,
    {
      status: completion.status,
      statusMessage: completion.statusMessage,
      headers: completion.headers.filter(([name]) => completion.bodyBase64 !== null || name.toLowerCase() !== 'content-length'),
      body: Buffer.from(completion.bodyBase64 ?? '', 'base64'),
      stream: null,
    },
    addHeaders,
  );
}
