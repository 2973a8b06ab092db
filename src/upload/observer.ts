/**
 * What the upload handlers tell about a request while they handle it: body bytes as they arrive,
 * the ranges a session holds, and the backend's answer. Whoever wants to know (upload progress,
 * metrics) attaches an observer to the request before the handler runs; the handlers know only
 * this interface, never who listens.
 */
import type { Context } from 'koa';
import type { ByteRange } from '../protocol/range-set';

export interface UploadObserver {
  /** The request's body bytes taken so far (called for every chunk: must be cheap). */
  bytes(received: number): void;
  /** The ranges the session holds (when the segment begins, and once it is acknowledged). */
  acknowledged(ranges: readonly ByteRange[]): void;
  /** The upload was handed off (or the stored answer replayed) with the backend's `status`. */
  completed(status: number): void;
  /**
   * The request began an upload: a session's segment was admitted (`created`: it started the
   * session), or a one-request upload (multipart, no Session-ID) began (`created` true).
   */
  began?(upload: { session: boolean; created: boolean }): void;
  /** The segment's bytes were acknowledged: its session holds them now. */
  committed?(): void;
  /** A hand-off ended after `seconds`: the backend answered `status`, or it failed (null: unreachable, broken off, refused). */
  handedOff?(status: number | null, seconds: number): void;
}

const OBSERVERS = Symbol('uploadObservers');

type WithObservers = Record<symbol, UploadObserver[] | undefined>;

/** Attaches `observer` to the request (before the upload handler runs). */
export function observeUpload(ctx: Context, observer: UploadObserver): void {
  const state = ctx.state as WithObservers;
  (state[OBSERVERS] ??= []).push(observer);
}

/** The request's observers as one (null when nobody observes it: the handlers then skip the calls). */
export function uploadObserver(ctx: Context): UploadObserver | null {
  const list = (ctx.state as WithObservers)[OBSERVERS];
  if (!list || list.length === 0) return null;
  if (list.length === 1) return list[0]!;
  return {
    bytes: (received) => list.forEach((o) => o.bytes(received)),
    acknowledged: (ranges) => list.forEach((o) => o.acknowledged(ranges)),
    completed: (status) => list.forEach((o) => o.completed(status)),
    began: (upload) => list.forEach((o) => o.began?.(upload)),
    committed: () => list.forEach((o) => o.committed?.()),
    handedOff: (status, seconds) => list.forEach((o) => o.handedOff?.(status, seconds)),
  };
}
