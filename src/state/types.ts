import type { ByteRange } from '../protocol/range-set';

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

/** Durable state of one resumable upload session. */
export interface SessionRecord {
  id: string;
  total: number;
  /** Acknowledged ranges: sorted, disjoint, non-adjacent. */
  ranges: ByteRange[];
  /** Where the data lives (fixed at session creation, so any location sharing the state can continue it). */
  dataPath: string;
  fileName: string;
  contentType: string;
  fieldName: string;
  createdAt: number;
  updatedAt: number;
  /** After this instant the session is stale: an incomplete one loses data and state, a complete one its state. */
  expiresAt: number;
  handoff?: HandoffClaim;
  completion?: CompletionRecord;
}

/**
 * Where session records live. `put` must be atomic (a reader sees the old or the new record,
 * never a mix) and, when `durable`, on stable storage before it resolves (D23).
 * Read-modify-write cycles are made safe by a `Locker`, not by the store.
 */
export interface SessionStore {
  get(id: string): Promise<SessionRecord | undefined>;
  put(record: SessionRecord): Promise<void>;
  delete(id: string): Promise<void>;
  /** Every session id currently stored (for the expiry sweep). */
  ids(): AsyncIterable<string>;
  close(): Promise<void>;
}

export interface Lease {
  release(): Promise<void>;
}

/**
 * Coordination between concurrent requests of one session.
 * - `lock`: exclusive, short critical sections (read-modify-write of a record). Waits.
 * - `reserve`: claims a byte range for a segment in flight; refuses (null) a range that
 *   overlaps one already claimed on the same session (D4: answered 503 + Retry-After).
 */
export interface Locker {
  lock(key: string): Promise<Lease>;
  reserve(key: string, range: ByteRange): Promise<Lease | null>;
  close(): Promise<void>;
}

/** Runs `fn` holding the lock on `key`. */
export async function withLock<T>(locker: Locker, key: string, fn: () => Promise<T>): Promise<T> {
  const lease = await locker.lock(key);
  try {
    return await fn();
  } finally {
    await lease.release();
  }
}
