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
 * What `SessionStore.update` does: store `record` (when given) and resolve with `result`.
 * Without `record` nothing is written.
 */
export interface Change<T> {
  record?: SessionRecord;
  result: T;
}

/**
 * Where session records live. Writes are atomic (a reader sees the old or the new record, never a
 * mix) and, when `durable`, on stable storage before they resolve (D23).
 *
 * `guards`: leases the write is made on behalf of. A write whose guard is no longer held (released,
 * or lost: expired and perhaps granted to another instance) is refused with `LeaseLostError`, and
 * stores shared between instances check this in the same atomic step as the write (fencing).
 */
export interface SessionStore {
  get(id: string): Promise<SessionRecord | undefined>;
  put(record: SessionRecord, guards?: readonly Lease[]): Promise<void>;
  delete(id: string, guards?: readonly Lease[]): Promise<void>;
  /**
   * Atomic read-modify-write of one record: `decide` gets a copy of the current record (or
   * undefined) and says what to store. If another writer changed the record in between, `decide`
   * runs again on the new one, so it must have no side effects; an error it throws aborts the
   * update and is rethrown.
   */
  update<T>(id: string, decide: (current: SessionRecord | undefined) => Change<T>, guards?: readonly Lease[]): Promise<T>;
  /** Every session id currently stored (for the expiry sweep). */
  ids(): AsyncIterable<string>;
  close(): Promise<void>;
}

/** A granted lock or reservation. */
export interface Lease {
  /** False once released, or once lost (a shared lease that expired before it could be renewed). */
  readonly held: boolean;
  /** Aborted when the lease is lost while still in use (never by `release`): stop writing on its behalf. */
  readonly lost: AbortSignal;
  /**
   * For stores that check a lease atomically with a write (Redis): a key and the value it holds
   * exactly while this lease is held. In-process leases have none (they cannot be lost).
   */
  readonly fence?: { key: string; value: string };
  release(): Promise<void>;
}

/**
 * Coordination between concurrent requests of one session.
 * - `lock`: exclusive, short critical sections (read-modify-write of a record). Waits; the
 *   requests of one process are granted in order.
 * - `reserve`: claims a byte range for a segment in flight; refuses (null) a range that
 *   overlaps one already claimed on the same session (D4: answered 503 + Retry-After).
 * Shared implementations (Redis) lease both with a time limit, renewed while held, so a crashed
 * instance cannot hold a session forever.
 */
export interface Locker {
  lock(key: string): Promise<Lease>;
  reserve(key: string, range: ByteRange): Promise<Lease | null>;
  close(): Promise<void>;
}

/** The shared state (Redis) cannot be reached or answered an error: the client should retry (503). */
export class StateUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateUnavailableError';
  }
}

/** A write was made on behalf of a lease that is no longer held (fencing): nothing was written. */
export class LeaseLostError extends StateUnavailableError {
  constructor(message = 'the session lease was lost (expired or taken over); nothing was written') {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/** Throws `LeaseLostError` when a guard is not held any more (the in-process part of fencing). */
export function checkGuards(guards: readonly Lease[] | undefined): void {
  for (const guard of guards ?? []) if (!guard.held) throw new LeaseLostError();
}

/** A lease whose `lost` signal never fires (in-process locks). */
export function localLease(onRelease: () => void): Lease {
  let held = true;
  const never = new AbortController().signal;
  return {
    get held() {
      return held;
    },
    lost: never,
    async release() {
      if (!held) return;
      held = false;
      onRelease();
    },
  };
}

/** Runs `fn` holding the lock on `key`; `fn` gets the lease (to guard its writes). */
export async function withLock<T>(locker: Locker, key: string, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await locker.lock(key);
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}

/**
 * `SessionStore.update` for stores whose writers all live in this process: read, decide and
 * write under an in-process lock (Redis does the same atomically in the server).
 */
export function updateInProcess<T>(
  store: Pick<SessionStore, 'get' | 'put'>,
  locker: Locker,
  id: string,
  decide: (current: SessionRecord | undefined) => Change<T>,
  guards?: readonly Lease[],
): Promise<T> {
  return withLock(locker, id, async () => {
    const change = decide(await store.get(id));
    if (change.record) {
      if (change.record.id !== id) throw new Error(`update of ${id} returned a record of ${change.record.id}`);
      await store.put(change.record, guards);
    }
    return change.result;
  });
}
