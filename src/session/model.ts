/**
 * The session model: what a resumable upload session is, and its changes. Pure (no I/O, no
 * clock); the rules that decide the changes are in `rules.ts`.
 *
 * Every change of a session is a journal record (`JournalRecord`); `applyRecord` folds them into
 * the state, so the state is exactly what replaying the records gives (the file engine's journal,
 * D23). The Redis engine runs the same rules in Lua (`state/redis-scripts.ts`); the contract
 * suite checks both engines against them.
 */import { addRange, type ByteRange } from '../protocol/range-set';

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
