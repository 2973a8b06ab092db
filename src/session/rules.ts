/**
 * The session rules: what a segment does to a session (start, join, append, refuse), what its
 * commit decides (partial, replay, hand-off), claims, answers, termination and expiry. Pure
 * functions over the model (`model.ts`); the engines call them with the time and the segments in
 * flight.
 */
import { isComplete, overlaps, type ByteRange } from '../protocol/range-set';
import {
  WHOLE_FILE_UNKNOWN,
  applyRecord,

  type Actor,
  type CompletionRecord,
  type FileMeta,
  type HandoffClaim,
  type JournalRecord,
  type SegmentRequest,
  type SessionPolicy,
  type SessionRecord,
  type SessionState,
  type Tombstone,
} from './model';


export function isExpired(record: SessionRecord, now: number): boolean {
  return record.expiresAt <= now;
}

/** Every byte of the file is acknowledged. */
export function isFileComplete(record: SessionRecord): boolean {
  return record.total !== null && isComplete(record.ranges, record.total);
}

/** A claim made by an instance that is still handing the upload off (not abandoned). */
export function claimIsLive(record: SessionRecord, now: number, policy: SessionPolicy, actor: Actor): boolean {
  const claim = record.handoff;
  if (!claim || record.completion) return false;
  if (actor.singleInstance && claim.owner !== actor.instanceId) return false;
  return now - claim.startedAt <= policy.handoffTimeoutMs;
}

/** What the status query (D22) reports: an abandoned claim is not a hand-off in progress. */
export function uploadState(record: SessionRecord, now: number, policy: SessionPolicy, actor: Actor): 'incomplete' | 'handing-off' | 'complete' {
  if (record.completion) return 'complete';
  return claimIsLive(record, now, policy, actor) ? 'handing-off' : 'incomplete';
}

/**
 * Where the acknowledged bytes stop being contiguous from byte 0: the offset a tus or IETF client
 * continues from (an append must start there).
 */
export function contiguousEnd(record: Pick<SessionRecord, 'ranges'>): number {
  const first = record.ranges[0];
  return first && first.start === 0 ? first.end + 1 : 0;
}

/**
 * Where an append may start: the contiguous end; once every byte is in, also the last byte (sent
 * again to trigger a hand-off that did not happen) and the end (an append of no bytes).
 */
export function appendsAt(record: SessionRecord, offset: number): boolean {
  if (offset === contiguousEnd(record)) return true;
  return isFileComplete(record) && (offset === record.total! - 1 || offset === record.total);
}

/** A refusal: the status the client gets, and why (503s carry Retry-After: the same request will do later). */
export interface Refusal {
  kind: 'refuse';
  status: 404 | 409 | 413 | 503;
  reason: string;
}

const refuse = (status: Refusal['status'], reason: string): Refusal => ({ kind: 'refuse', status, reason });

export type BeginDecision =
  /** The stored session is expired: expire it (data and state), then decide again on nothing. */
  | { kind: 'expired'; record: SessionRecord }
  | Refusal
  /** A new session: store `record` (its header) and create its data file. */
  | { kind: 'create'; record: SessionRecord; reserve: ByteRange }
  /** Go on with the stored session; `reserve` is the range the segment claims. */
  | { kind: 'join'; record: SessionRecord; reserve: ByteRange };

/**
 * A segment arrives (§3.7–§3.12): does it start a session, join one, or is it refused?
 * `inFlight` are the ranges reserved by segments of this session still streaming.
 * `tombstone` is what a retired session of this id left (its file may be replaced, D9).
 */
export function decideBegin(
  current: SessionRecord | undefined,
  tombstone: Tombstone | undefined,
  segment: SegmentRequest,
  inFlight: readonly ByteRange[],
  now: number,
  policy: SessionPolicy,
  actor: Actor,
): BeginDecision {
  if (current && isExpired(current, now)) return { kind: 'expired', record: current };
  if (!current && segment.append) return refuse(404, `unknown upload ${segment.id}`);
  if (current) {
    if (current.total === null && !current.declared) return refuse(503, 'a single-shot upload of this session is in flight');
    if (segment.total !== null && current.total !== null && current.total !== segment.total) {
      return refuse(409, current.completion
        ? `session ${current.id} already completed an upload of ${current.total} bytes`
        : `total ${segment.total} differs from the session's total ${current.total}`);
    }
    if (segment.total !== null && current.total === null) {
      const held = current.ranges.length > 0 ? current.ranges[current.ranges.length - 1]!.end + 1 : 0;
      if (segment.total < held) return refuse(409, `length ${segment.total} is less than the ${held} bytes already received`);
    }
    if (claimIsLive(current, now, policy, actor)) return refuse(503, 'the upload is being handed to the backend; retry shortly');
    if (segment.append && !appendsAt(current, segment.start)) {
      return refuse(409, `offset ${segment.start} is not where the upload continues (${contiguousEnd(current)})`);
    }
  }
  const total = current ? current.total : segment.total;
  let reserve: ByteRange;
  if (segment.append || segment.declare || current?.declared) {
    // Appends and declared sessions: the request's own bytes, within the length once it is known.
    const limit = total ?? segment.total;
    let end = segment.end;
    if (limit !== null && end > limit - 1) {
      if (end !== WHOLE_FILE_UNKNOWN.end) return refuse(413, `the bytes end at ${end + 1}, beyond the upload's length ${limit}`);
      end = Math.max(limit - 1, segment.start - 1);
    }
    reserve = { start: segment.start, end };
  } else {
    // A single-shot upload of unknown length claims the whole file (all of it, while the total is unknown).
    reserve = total === null ? WHOLE_FILE_UNKNOWN : segment.total === null ? { start: 0, end: total - 1 } : { start: segment.start, end: segment.end };
  }
  if (inFlight.some((r) => overlaps(r, reserve))) return refuse(503, 'the range overlaps a segment of this session still in flight');
  if (current) return { kind: 'join', record: current, reserve };
  const replaces = tombstone && tombstone.dataPath === segment.dataPath ? tombstone.fileId : null;
  return {
    kind: 'create',
    reserve,
    record: {
      id: segment.id, total: segment.total, ranges: [], dataPath: segment.dataPath, fileId: null, replaces,
      ...segment.meta, createdAt: now, updatedAt: now, expiresAt: now + policy.sessionTimeoutMs,
      ...declaredFields(segment.declare),
    },
  };
}

function declaredFields(declare: SegmentRequest['declare']): Pick<SessionRecord, 'declared' | 'concat' | 'metadata'> {
  if (!declare) return {};
  return { declared: true, ...(declare.concat ? { concat: declare.concat } : {}), ...(declare.metadata ? { metadata: declare.metadata } : {}) };
}

export type CommitDecision =
  | Refusal
  /** The upload was complete and answered: replay the stored answer (D7). */
  | { kind: 'replay'; record: SessionRecord }
  /** Acknowledged; bytes are still missing: 201. */
  | { kind: 'partial'; record: SessionRecord; records: JournalRecord[] }
  /** Acknowledged, and this request claimed the hand-off (exactly one does, D7). */
  | { kind: 'handoff'; record: SessionRecord; records: JournalRecord[] };

/**
 * A segment's bytes are stored (and durable): record them and decide the answer. `createdAt`
 * identifies the session the segment began on; `total` is the file size it proved (a single-shot
 * upload of unknown length knows it only now).
 */
export function decideCommit(
  current: SessionRecord | undefined,
  segment: { createdAt: number; start: number; end: number; total: number | null; meta: FileMeta },
  now: number,
  policy: SessionPolicy,
  actor: Actor,
): CommitDecision {
  if (!current || current.createdAt !== segment.createdAt || isExpired(current, now)) {
    return refuse(409, 'the session expired while the segment was being received');
  }
  const records: JournalRecord[] = [];
  if (isFileComplete(current)) {
    if (current.completion) return { kind: 'replay', record: current };
    if (claimIsLive(current, now, policy, actor)) return refuse(503, 'the upload is being handed to the backend; retry shortly');
  } else if (segment.start <= segment.end || (current.total === null && segment.total !== null)) {
    const range: JournalRecord = { t: 'r', s: segment.start, e: segment.end, u: now, x: now + policy.sessionTimeoutMs };
    if (current.total === null && segment.total !== null) range.T = segment.total;
    records.push(range);
  }
  let record = records.reduce((s, r) => applyRecord(s, r), { record: current } as SessionState).record!;
  // A partial upload of a tus concatenation is complete without a hand-off: its final upload is handed off.
  if (!isFileComplete(record) || record.concat === 'partial') return { kind: 'partial', record, records };
  const claim: JournalRecord = { t: 'c', o: actor.instanceId, at: now, m: segment.meta };
  records.push(claim);
  record = applyRecord({ record }, claim).record!;
  return { kind: 'handoff', record, records };
}

/** The hand-off attempt failed: drop its claim (if it is still this one), so a retry hands off at once. */
export function decideRelease(current: SessionRecord | undefined, claim: HandoffClaim): JournalRecord[] {
  const held = current?.handoff;
  if (!held || held.owner !== claim.owner || held.startedAt !== claim.startedAt) return [];
  return [{ t: 'd', o: claim.owner, at: claim.startedAt }];
}

/** The backend answered: store the answer (the first stored answer stays: a second hand-off only follows an abandoned claim). */
export function decideFinish(current: SessionRecord | undefined, completion: CompletionRecord, now: number, policy: SessionPolicy): JournalRecord[] {
  if (!current || current.completion) return [];
  return [{ t: 'a', c: completion, x: now + policy.completedRetentionMs }];
}

/**
 * The expiry sweep: `expire` removes an incomplete session with its data; `retire` removes a
 * completed one but keeps a tombstone of the file it left (the backend's file, D9); `keep` leaves it.
 */
export function decideSweep(record: SessionRecord, now: number): 'keep' | 'expire' | 'retire' {
  if (!isExpired(record, now)) return 'keep';
  return leftForBackend(record) ? 'retire' : 'expire';
}

/** The session's file is the backend's now (handed off, not cleaned up): removing the session keeps it (D9). */
function leftForBackend(record: SessionRecord): boolean {
  return !!record.completion && record.fileId !== null && !record.completion.fileRemoved;
}

/**
 * The client cancels the upload (tus termination, IETF cancellation): like an expiry now, refused
 * while a hand-off is in progress.
 */
export function decideTerminate(record: SessionRecord, now: number, policy: SessionPolicy, actor: Actor): Refusal | 'expire' | 'retire' {
  if (claimIsLive(record, now, policy, actor)) return refuse(409, 'the upload is being handed to the backend; it cannot be cancelled');
  return leftForBackend(record) ? 'retire' : 'expire';
}

/** The tombstone a retired session leaves. */
export function tombstoneOf(record: SessionRecord, now: number): Tombstone {
  return { id: record.id, dataPath: record.dataPath, fileId: record.fileId!, retiredAt: now };
}
