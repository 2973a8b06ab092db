/**
 * The progress zone (`upload_progress NAME SIZE`): where tracked uploads count their bytes, and
 * where the progress endpoint reads them. Two implementations share one contract
 * (test/progress/contracts.ts): in process, and in Redis for several gateway instances.
 *
 * An entry is one progress id. It is either one request (a multipart form, a whole raw file:
 * `size` is its Content-Length, as in the module) or a resumable session (`size` is the file's
 * total, and every segment sent with the same id adds to it: the entry counts the whole session).
 * Requests in flight report their bytes under a per-request key; readers combine them.
 */
import { addRange, coveredBytes, normalise, type ByteRange } from '../protocol/range-set';
import type { ProgressFigures } from '../protocol/upload-progress';

/** What a tracked request is. */
export type UploadIdentity =
  | { kind: 'request'; /** Content-Length, or −1 for a chunked body (P6). */ size: number }
  | { kind: 'session'; session: string; total: number };

/** Bytes one request in flight has received: a segment's first byte's offset, and how many so far. */
export interface InFlight {
  start: number;
  received: number;
  /** When the request last reported (ms): a request silent for `STALE_IN_FLIGHT_MS` belonged to a dead instance. */
  at: number;
}

/** The stored state of one id. */
export interface ProgressEntry {
  id: string;
  kind: 'request' | 'session';
  /** The resumable session (kind `session`). */
  session?: string;
  /** Content-Length (−1 unknown) or the session's total. */
  size: number;
  /** Session: ranges the gateway acknowledged. */
  acknowledged: ByteRange[];
  /** Requests in flight by request key. */
  inFlight: Record<string, InFlight>;
  /** Request kind: bytes received, kept after the request ended. */
  received: number;
  finished: boolean;
  /** Stored final status, 0 for none (P7: a 3xx is stored and the state stays `done`). */
  status: number;
  createdAt: number;
  updatedAt: number;
}

/** How a request ends. */
export interface EndOutcome {
  /** Finish the entry with this final status (null: a segment whose session goes on). */
  finish: number | null;
  /** Request kind: the body's final size (a chunked body's size becomes known, P6). */
  size?: number;
  /** How long the entry stays once nothing is in flight: the track_uploads timeout when finished, else the session's idle time. */
  ttlMs: number;
}

export type BeginResult = 'ok' | 'duplicate' | 'full';

export interface ProgressZone {
  readonly name: string;
  /**
   * Registers request `requestKey` under `id`: creates the entry, or joins the entry of the same
   * resumable session (clearing a previous finish). Anything else already under `id` is a
   * `duplicate` (P2: the module answers 500); `full` when the zone has no room (503).
   */
  begin(id: string, upload: UploadIdentity, requestKey: string): Promise<BeginResult>;
  /** The bytes a request has received so far (callers throttle: at most every ~100 ms). */
  report(id: string, requestKey: string, progress: { start: number; received: number }): Promise<void>;
  /** A session's acknowledged ranges (they only grow: fewer bytes than stored are ignored). */
  acknowledge(id: string, ranges: readonly ByteRange[]): Promise<void>;
  /** Request `requestKey` ended: its in-flight bytes go (a request's count stays), and maybe the entry finishes. */
  end(id: string, requestKey: string, outcome: EndOutcome): Promise<void>;
  /** §4.4: an error answered before the upload was registered; creates an error-only entry when `id` has none. */
  recordError(id: string, status: number, ttlMs: number): Promise<void>;
  get(id: string): Promise<ProgressEntry | undefined>;
  /**
   * Calls `listener` whenever the entry may have changed (this instance's writes at once, other
   * instances' within ~100 ms). Returns the function that stops it.
   */
  watch(id: string, listener: () => void): () => void;
  /** Listeners registered now (tests check that streams leave none behind). */
  watchers(): number;
  close(): Promise<void>;
}

/** A request that reported nothing for this long is taken as gone (its instance died). */
export const STALE_IN_FLIGHT_MS = 60_000;
/** Requests in flight re-report at least this often (so they are not taken as gone). */
export const IN_FLIGHT_KEEPALIVE_MS = 15_000;
/** How long an entry with a request in flight lives without a report (a dead instance's entry goes). */
export const IN_FLIGHT_TTL_MS = 2 * STALE_IN_FLIGHT_MS;

/** What an entry says: the module's figures, plus the byte ranges received. */
export interface ProgressSnapshot extends ProgressFigures {
  ranges: ByteRange[];
}

/** Combines an entry's acknowledged ranges and what its requests in flight have received. */
export function snapshotOf(entry: ProgressEntry, now = Date.now()): ProgressSnapshot {
  const live = Object.values(entry.inFlight).filter((f) => now - f.at < STALE_IN_FLIGHT_MS && f.received > 0);
  if (entry.kind === 'request') {
    const received = live.reduce((n, f) => Math.max(n, f.received), entry.received);
    return { size: entry.size, received, finished: entry.finished, status: entry.status, ranges: received > 0 ? [{ start: 0, end: received - 1 }] : [] };
  }
  let ranges = entry.acknowledged;
  for (const f of live) {
    const end = Math.min(entry.size, f.start + f.received) - 1;
    if (end >= f.start) ranges = addRange(ranges, { start: f.start, end });
  }
  return { size: entry.size, received: coveredBytes(ranges), finished: entry.finished, status: entry.status, ranges };
}

/** Sorted, merged copies of `ranges` (invalid ones dropped). */
export function unionOf(ranges: readonly ByteRange[]): ByteRange[] {
  return normalise(ranges.filter((r) => Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && r.start >= 0 && r.end >= r.start));
}

/** What an entry costs of a zone (the module: ~100 bytes plus the id, from its slab allocator). */
export function entryCost(id: string): number {
  return 128 + Buffer.byteLength(id, 'latin1');
}

/** Whether a new request under `id` may use `existing` (the same resumable session), per P2. */
export function canJoin(existing: Pick<ProgressEntry, 'kind' | 'session'>, upload: UploadIdentity): boolean {
  return upload.kind === 'session' && existing.kind === 'session' && existing.session === upload.session;
}
