/**
 * A request's `Session-ID` and `Content-Range` (and their `X-` forms), parsed once: the upload
 * handlers and progress tracking both need them. Every occurrence is validated and the last one
 * is used (§3.4: the module rejects any invalid one; D10, D12, D13).
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { rawHeaderValues } from '../http/request';
import { parseContentRange, type SegmentRange } from '../protocol/content-range';
import { parseSessionId } from '../protocol/session-id';

export interface SegmentHeaders {
  sessionId: string | null;
  range: SegmentRange | null;
  /** Why an occurrence is invalid (the first one found), else null. */
  problem: string | null;
}

const PARSED = Symbol('segmentHeaders');

export function segmentHeaders(ctx: Context, location: Pick<LocationConfig, 'sessionIdMaxLength'>): SegmentHeaders {
  const state = ctx.state as Record<symbol, SegmentHeaders | undefined>;
  return (state[PARSED] ??= parse(ctx.req, location.sessionIdMaxLength));
}

function parse(req: Context['req'], maxLength: number): SegmentHeaders {
  let sessionId: string | null = null;
  for (const value of rawHeaderValues(req, 'session-id', 'x-session-id')) {
    const parsed = parseSessionId(value, maxLength);
    if (!parsed.ok) return { sessionId: null, range: null, problem: parsed.reason };
    sessionId = parsed.id;
  }
  let range: SegmentRange | null = null;
  for (const value of rawHeaderValues(req, 'content-range', 'x-content-range')) {
    const parsed = parseContentRange(value.trim());
    if (!parsed.ok) return { sessionId, range: null, problem: parsed.reason };
    range = parsed.range;
  }
  return { sessionId, range, problem: null };
}
