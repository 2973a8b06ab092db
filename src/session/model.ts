/**
 * The session model: what a resumable upload session is, and what a segment does to it. Pure
 * functions only (no I/O, no clock): the engines (`state/file-engine.ts`, `state/redis-engine.ts`)
 * call them with the time and the segments in flight, and store what they decide.
 *
 * Every change of a session is a journal record (`JournalRecord`); `applyRecord` folds them into
 * the state, so the state is exactly what replaying the records gives (the file engine's journal,
 * D23). The Redis engine runs the same decisions in Lua (`state/redis-scripts.ts`); the contract
 * suite checks both against this module.
 */
import { addRange, isComplete, overlaps, type ByteRange } from '../protocol/range-set';

/** How the completing request described the file (`$upload_file_name`, `$upload_content_type`, `$upload_field_name`). */
export interface FileMeta {
  fileName: string;
  contentType: string;
  fieldName: string;
}

/** The backend's answer to a completed upload, kept so a repeated segment can be answered again without a second hand-off (D7). */
export interface CompletionRecord {
  status: number;
  statusMessage: string;
  /** Response headers as received (name, value), in order. */
  headers: Array<[string, string]>;
  /** Body as base64, or null when it was larger than what we keep (then a replay sends no body). */
  bodyBase64: string | null;
  completedAt: number;
  /** True when upload_cleanup removed the data file after the answer. */
  fileRemoved: boolean;
}

/** A hand-off in progress; `owner` is the gateway instance doing it. */
export interface HandoffClaim {
  owner: string;
  startedAt: number;
}

/** The state of one upload session. */
export interface SessionRecord extends FileMeta {
  id: string;
  /** The file's size; null while a single-shot upload of unknown length (chunked, no range) is in flight. */
  total: number | null;
  /** Acknowledged ranges: sorted, disjoint, non-adjacent. */
  ranges: ByteRange[];
  /** Where the data lives (fixed at creation, so any location sharing the state can continue it). */
  dataPath: string;
  /**
   * Identity (inode number) of the data file this session created with O_EXCL; null until it
   * exists. Files are opened and deleted only when they still have this identity, so a session
   * never touches another upload's file of the same name (one owner per data file).
   */
  fileId: string | null;
  /** Identity of the file an earlier session of this id left for the backend (D9): the one file this session may replace. */
  replaces: string | null;
  /** Distinguishes successive sessions of one id. */
  createdAt: number;
  updatedAt: number;
  /** After this instant the session is stale: an incomplete one loses data and state, a complete one its state. */
  expiresAt: number;
  handoff?: HandoffClaim;
  completion?: CompletionRecord;
  /**
   * Started by a creation request (tus, the IETF draft) before any byte: it exists with no bytes,
   * a failed request never removes it, and a null `total` is a length the client defers.
   */
  declared?: true;
  /** tus concatenation: `partial` (complete without a hand-off; a final upload consumes it) or `final;<id> <id>…`. */
  concat?: string;
  /** tus `Upload-Metadata` as the creation request sent it (returned by HEAD). */
  metadata?: string;
}

/** What stays of a completed session after its retention time: which file it left the backend (D9). */
export interface Tombstone {
  id: string;
  dataPath: string;
  fileId: string;
  retiredAt: number;
}

/** One change of a session, as stored in its journal. */
export type JournalRecord =
  /** A new session (no ranges yet), or a compacted snapshot of one. */
  | { t: 'h'; r: SessionRecord }
  /** The data file was created: its identity. */
  | { t: 'f'; f: string }
  /** Bytes s..e acknowledged (none when s > e); T: the total, learned now (a body or deferred length of unknown size); u updatedAt, x expiresAt. */
  | { t: 'r'; s: number; e: number; T?: number; u: number; x: number }
  /** The hand-off was claimed by `o` at `at`; `m` is how the completing request described the file. */
  | { t: 'c'; o: string; at: number; m: FileMeta }
  /** The claim was dropped (the attempt failed; a retry hands off again). */
  | { t: 'd'; o: string; at: number }
  /** The backend answered: `c`; x is the new expiresAt (retention). */
  | { t: 'a'; c: CompletionRecord; x: number }
  /** The session retired after its retention: only the tombstone remains. */
  | { t: 'z'; z: Tombstone };

/** What a journal holds: a live session, or the tombstone of a retired one. */
export interface SessionState {
  record?: SessionRecord;
  tombstone?: Tombstone;
}

/** Per-location timing rules. */
export interface SessionPolicy {
  /** `upload_session_timeout`: idle incomplete sessions expire after this. */
  sessionTimeoutMs: number;
  /** `upload_completed_retention`: a completed session's answer is replayed this long. */
  completedRetentionMs: number;
  /** A hand-off claim older than this is abandoned (its instance died during the hand-off). */
  handoffTimeoutMs: number;
}

/** Who decides: the gateway instance, and whether it alone uses this state. */
export interface Actor {
  instanceId: string;
  /** No other instance shares the state: a claim by another owner was made by a dead process. */
  singleInstance: boolean;
}

/** A segment as the decisions see it: its bytes, the file's total (null: unknown yet), how it describes the file. */
export interface SegmentRequest {
  id: string;
  start: number;
  end: number;
  total: number | null;
  meta: FileMeta;
  /** The data path a new session gets. */
  dataPath: string;
  /**
   * An append (tus PATCH, IETF draft): joins an existing session only (404 when there is none),
   * at the offset where the session continues (`appendsAt`); `total` null means the session's own.
   * `end` is `Number.MAX_SAFE_INTEGER` for a body of unknown length, `start - 1` for no bytes.
   */
  append?: boolean;
  /** A creation request (tus, IETF draft): starts a declared session when there is none. */
  declare?: { concat?: string; metadata?: string };
}

/** The byte range a single-shot upload of unknown length reserves: all of them. */
export const WHOLE_FILE_UNKNOWN: ByteRange = { start: 0, end: Number.MAX_SAFE_INTEGER };

// ---------------------------------------------------------------------------------------------
// Journal replay
// ---------------------------------------------------------------------------------------------

/**
 * The state after one more record (a record that does not fit the state is ignored: it cannot
 * come from a valid journal). Records and states are never changed in place: each change makes a
 * new record object (sharing what did not change), so callers may keep references to old ones.
 */
export function applyRecord(state: SessionState, rec: JournalRecord): SessionState {
  if (rec.t === 'h') return { record: rec.r };
  if (rec.t === 'z') return { tombstone: rec.z };
  const current = state.record;
  if (!current) return state;
  const record = { ...current };
  switch (rec.t) {
    case 'f':
      record.fileId = rec.f;
      record.replaces = null;
      break;
    case 'r':
      if (rec.T !== undefined) record.total = rec.T;
      if (rec.s <= rec.e) record.ranges = addRange(record.ranges, { start: rec.s, end: rec.e });
      record.updatedAt = rec.u;
      record.expiresAt = rec.x;
      break;
    case 'c':
      record.handoff = { owner: rec.o, startedAt: rec.at };
      record.fileName = rec.m.fileName;
      record.contentType = rec.m.contentType;
      record.fieldName = rec.m.fieldName;
      record.updatedAt = rec.at;
      break;
    case 'd':
      if (record.handoff && record.handoff.owner === rec.o && record.handoff.startedAt === rec.at) delete record.handoff;
      break;
    case 'a':
      delete record.handoff;
      record.completion = rec.c;
      record.expiresAt = rec.x;
      break;
  }
  return { ...state, record };
}

/** Replays a whole journal. */
export function replay(records: readonly JournalRecord[]): SessionState {
  return records.reduce(applyRecord, {} as SessionState);
}

/** Records that rebuild `state` from nothing (journal compaction). */
export function snapshotRecords(state: SessionState): JournalRecord[] {
  if (state.record) return [{ t: 'h', r: state.record }];
  if (state.tombstone) return [{ t: 'z', z: state.tombstone }];
  return [];
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

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
