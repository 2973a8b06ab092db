/**
 * The progress zone in this process (the default): a map of entries bounded by the zone's size,
 * finished entries dropped `timeout` after they finish (P9: the module's 15 s sweep is replaced by
 * an exact expiry), listeners called on every change.
 */
import { coveredBytes, type ByteRange } from '../protocol/range-set';
import { canJoin, entryCost, unionOf, type BeginResult, type EndOutcome, type ProgressEntry, type ProgressZone, type UploadIdentity } from './types';

interface Slot {
  entry: ProgressEntry;
  /** Null while a request is in flight. */
  expiresAt: number | null;
}

const SWEEP_EVERY_MS = 15_000;

export class MemoryProgressZone implements ProgressZone {
  private readonly slots = new Map<string, Slot>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private used = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly name: string,
    /** Bytes, as `upload_progress NAME SIZE` (entries cost `entryCost`). */
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  /** Removes expired entries (also done lazily on access). */
  sweep(): void {
    for (const id of [...this.slots.keys()]) this.live(id);
  }

  private live(id: string): Slot | undefined {
    const slot = this.slots.get(id);
    if (slot && slot.expiresAt !== null && slot.expiresAt <= this.now()) {
      this.slots.delete(id);
      this.used -= entryCost(id);
      return undefined;
    }
    return slot;
  }

  private notify(id: string): void {
    for (const listener of [...(this.listeners.get(id) ?? [])]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  async begin(id: string, upload: UploadIdentity, requestKey: string): Promise<BeginResult> {
    const now = this.now();
    const slot = this.live(id);
    if (slot) {
      const { entry } = slot;
      if (!canJoin(entry, upload)) return 'duplicate';
      if (upload.kind === 'session' && entry.size !== upload.total) {
        // The session id now names another upload (D9): start counting afresh.
        entry.size = upload.total;
        entry.acknowledged = [];
      }
      entry.finished = false;
      entry.status = 0;
      entry.inFlight[requestKey] = { start: 0, received: 0, at: now };
      entry.updatedAt = now;
      slot.expiresAt = null;
    } else {
      if (this.used + entryCost(id) > this.capacity) this.sweep();
      if (this.used + entryCost(id) > this.capacity) return 'full';
      this.used += entryCost(id);
      this.slots.set(id, {
        expiresAt: null,
        entry: {
          id,
          kind: upload.kind,
          ...(upload.kind === 'session' ? { session: upload.session } : {}),
          size: upload.kind === 'session' ? upload.total : upload.size,
          acknowledged: [],
          inFlight: { [requestKey]: { start: 0, received: 0, at: now } },
          received: 0,
          finished: false,
          status: 0,
          createdAt: now,
          updatedAt: now,
        },
      });
    }
    this.notify(id);
    return 'ok';
  }

  async report(id: string, requestKey: string, progress: { start: number; received: number }): Promise<void> {
    const slot = this.live(id);
    if (!slot || !slot.entry.inFlight[requestKey]) return;
    const now = this.now();
    slot.entry.inFlight[requestKey] = { start: progress.start, received: progress.received, at: now };
    slot.entry.updatedAt = now;
    this.notify(id);
  }

  async acknowledge(id: string, ranges: readonly ByteRange[]): Promise<void> {
    const slot = this.live(id);
    if (!slot || slot.entry.kind !== 'session') return;
    const set = unionOf(ranges);
    if (coveredBytes(set) <= coveredBytes(slot.entry.acknowledged)) return;
    slot.entry.acknowledged = set;
    slot.entry.updatedAt = this.now();
    this.notify(id);
  }

  async end(id: string, requestKey: string, outcome: EndOutcome): Promise<void> {
    const slot = this.live(id);
    if (!slot) return;
    const { entry } = slot;
    const now = this.now();
    const mine = entry.inFlight[requestKey];
    delete entry.inFlight[requestKey];
    if (entry.kind === 'request' && mine) entry.received = Math.max(entry.received, mine.received);
    if (outcome.size !== undefined) entry.size = outcome.size;
    if (outcome.finish !== null) {
      entry.finished = true;
      entry.status = outcome.finish >= 300 ? outcome.finish : 0;
    }
    entry.updatedAt = now;
    if (Object.keys(entry.inFlight).length === 0) slot.expiresAt = now + outcome.ttlMs;
    this.notify(id);
  }

  async recordError(id: string, status: number, ttlMs: number): Promise<void> {
    if (this.live(id)) return;
    if (this.used + entryCost(id) > this.capacity) this.sweep();
    if (this.used + entryCost(id) > this.capacity) return;
    const now = this.now();
    this.used += entryCost(id);
    this.slots.set(id, {
      expiresAt: now + ttlMs,
      entry: { id, kind: 'request', size: 0, acknowledged: [], inFlight: {}, received: 0, finished: true, status, createdAt: now, updatedAt: now },
    });
    this.notify(id);
  }

  async get(id: string): Promise<ProgressEntry | undefined> {
    const slot = this.live(id);
    return slot ? (structuredClone(slot.entry) as ProgressEntry) : undefined;
  }

  watch(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    const own = () => listener();
    set.add(own);
    return () => {
      const current = this.listeners.get(id);
      if (!current) return;
      current.delete(own);
      if (current.size === 0) this.listeners.delete(id);
    };
  }

  watchers(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.listeners.clear();
  }
}
