/**
 * The session engine: where sessions live and how a segment goes through one. Two
 * implementations pass one contract suite (test/state/engine-contract.ts):
 * - `FileSessionEngine` (`upload_state_store`): one process owns the state; the session table is
 *   in memory, each session's changes are appended to its journal file;
 * - `RedisSessionEngine` (`upload_state_redis`): several instances share the state in Redis.
 * The rules (what a segment does to a session) are the pure functions of `session/model.ts`.
 *
 * A segment's life: `begin` (find or start the session, reserve the byte range; a new session's
 * data file is created here) → the caller streams the body into `ticket.file`, checking
 * `ticket.fence` before each write, and makes it durable → `commit` (acknowledge the range and
 * decide: partial, replay or hand-off) or `abort` (nothing recorded; a session that never got a
 * byte is removed with its file).
 */
import type { ByteRange } from '../protocol/range-set';
import type { CompletionRecord, HandoffClaim, SegmentRequest, SessionPolicy, SessionRecord } from '../session/model';
import type { PooledFile } from '../store/data-file-pool';

/** A location's rules for its sessions: the model's timing, plus how files are written. */
export interface EnginePolicy extends SessionPolicy {
  /** File mode of data and state files (`upload_store_access`). */
  fileMode: number;
  /** fsync before acknowledging (D23, `upload_fsync`). */
  durable: boolean;
}

/** Stops the writes of a segment whose reservation is no longer held (a paused instance writes nothing). */
export interface WriteFence {
  /** Throws `LeaseLostError` when the reservation may have been lost (checked before every write). */
  check(): void;
  /**
   * Calls `listener` when the reservation is lost while the body streams (at once if it is lost
   * already); returns the way to stop listening. A callback, not an AbortSignal: one per segment
   * costs measurable CPU and garbage on small segments.
   */
  onLost(listener: (reason: Error) => void): () => void;
}

/** A segment admitted by `begin`. */
export interface SegmentTicket {
  readonly id: string;
  /** The session when the segment began: its acknowledged ranges are compared, never rewritten (D4). */
  readonly record: SessionRecord;
  /** The reserved byte range. */
  readonly range: ByteRange;
  /** The data file to write into; null when there is nothing to write to (a completed upload whose file is gone). */
  readonly file: PooledFile | null;
  /** This segment started the session. */
  readonly created: boolean;
  readonly fence: WriteFence;
}

/** What a segment's body proved (see `SessionEngine.commit`). */
export interface ProvedSegment {
  total: number | null;
  meta: SegmentRequest['meta'];
  end?: number;
}

/** The last byte a commit acknowledges: where the body ended, within the reserved range and the total. */
export function committedEnd(range: ByteRange, proved: ProvedSegment): number {
  const end = proved.end ?? range.end;
  return proved.total === null ? end : Math.min(end, range.end, proved.total - 1);
}

export type CommitOutcome =
  | { kind: 'partial'; record: SessionRecord }
  | { kind: 'replay'; record: SessionRecord }
  | { kind: 'handoff'; record: SessionRecord; claim: HandoffClaim };

export interface SessionEngine {
  /** Admits a segment (throws `HttpError` 409/503 when the session refuses it, D3/D4/D7/D9). */
  begin(segment: SegmentRequest, policy: EnginePolicy): Promise<SegmentTicket>;
  /**
   * The segment's bytes are stored and durable: acknowledge them (durably, D23) and decide.
   * `total` is what the body proved (a single-shot upload of unknown length learns it now; null:
   * a declared session's length stays deferred); `end`, where the bytes of a body of unknown
   * length really ended (default: the reserved range, cut at `total`).
   */
  commit(ticket: SegmentTicket, proved: ProvedSegment, policy: EnginePolicy): Promise<CommitOutcome>;
  /** The segment failed: nothing is recorded; its reservation is released. */
  abort(ticket: SegmentTicket, policy: EnginePolicy): Promise<void>;
  /** The backend answered the hand-off `claim`: store the answer; with `completion.fileRemoved` (upload_cleanup) the data file is deleted first. */
  finishHandoff(record: SessionRecord, claim: HandoffClaim, completion: CompletionRecord, policy: EnginePolicy): Promise<void>;
  /** The hand-off attempt failed: drop its claim so that the client's retry hands off at once. */
  releaseHandoff(record: SessionRecord, claim: HandoffClaim, policy: EnginePolicy): Promise<void>;
  /**
   * The client cancels the upload (tus termination, IETF cancellation): an incomplete session goes
   * with its data, a completed one leaves its file to the backend (as the sweep does); refused
   * (409) while a hand-off is in progress. False when there was no such session.
   */
  terminate(id: string, policy: EnginePolicy): Promise<boolean>;
  /** The session as acknowledged (durable), or undefined; an expired one is undefined. */
  status(id: string): Promise<SessionRecord | undefined>;
  /**
   * Removes expired sessions (incomplete ones with their data; completed ones keep their file for
   * the backend and leave a tombstone, D9). `policy` is the strictest of the locations sharing the
   * state: its timeouts tell which sessions cannot have expired yet.
   */
  sweep(policy: EnginePolicy): Promise<number>;
  close(): Promise<void>;
}
