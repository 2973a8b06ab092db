import type { ByteRange } from '../protocol/range-set';
import { localLease, type Lease, type Locker } from './types';

/** In-process locker: one gateway process owns its sessions (file state store). */
export class MemoryLocker implements Locker {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly inflight = new Map<string, Set<ByteRange>>();

  async lock(key: string): Promise<Lease> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let unlock!: () => void;
    const current = new Promise<void>((resolve) => (unlock = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    return localLease(() => {
      unlock();
      // Forget the key once nobody queued behind us, so the map does not grow.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
  }

  async reserve(key: string, range: ByteRange): Promise<Lease | null> {
    let claimed = this.inflight.get(key);
    if (claimed) {
      for (const other of claimed) if (other.start <= range.end && range.start <= other.end) return null;
    } else {
      claimed = new Set();
      this.inflight.set(key, claimed);
    }
    const entry = { start: range.start, end: range.end };
    claimed.add(entry);
    return localLease(() => {
      claimed!.delete(entry);
      if (claimed!.size === 0 && this.inflight.get(key) === claimed) this.inflight.delete(key);
    });
  }

  async close(): Promise<void> {
    this.tails.clear();
    this.inflight.clear();
  }
}
