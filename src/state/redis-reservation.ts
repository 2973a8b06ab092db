/**
 * A segment's byte-range reservation in Redis (`rv:<token>`, with a time to live), renewed by a
 * timer while the body streams. Its local deadline fences the writes (D35): before every write the
 * instance checks, on its monotonic clock, that the lease it last renewed has at least a third of
 * its time left, so an instance paused past its lease writes nothing when it resumes.
 */
import { performance } from 'node:perf_hooks';
import type { ByteRange } from '../protocol/range-set';
import type { WriteFence } from './engine';
import { LeaseLostError } from './errors';

/** A segment's reservation: renewed by a timer; its local deadline fences the writes. */
export class Reservation implements WriteFence {
  private lostWith: LeaseLostError | null = null;
  private listener: ((reason: Error) => void) | null = null;
  private readonly timer: NodeJS.Timeout;
  /** Monotonic time until which the reservation is certainly still ours (minus the margin). */
  private deadline: number;
  private done = false;

  constructor(
    readonly key: string,
    readonly token: string,
    readonly range: ByteRange,
    private readonly ttlMs: number,
    requestedAt: number,
    private readonly renewOnce: () => Promise<boolean>,
  ) {
    this.deadline = requestedAt + this.ttlMs - this.margin;
    this.timer = setInterval(() => void this.renew(), Math.max(10, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  /** A third of the time to live: a write must start with at least that much of the lease left. */
  private get margin(): number {
    return Math.floor(this.ttlMs / 3);
  }

  onLost(listener: (reason: Error) => void): () => void {
    if (this.lostWith) {
      listener(this.lostWith);
      return () => undefined;
    }
    this.listener = listener;
    return () => {
      if (this.listener === listener) this.listener = null;
    };
  }

  check(): void {
    if (this.lostWith) throw new LeaseLostError();
    if (performance.now() > this.deadline) {
      this.lose();
      throw new LeaseLostError();
    }
  }

  private async renew(): Promise<void> {
    if (this.done) return;
    // The deadline counts from when the renewal was sent: Redis extends the key at or after that.
    const sentAt = performance.now();
    try {
      if (await this.renewOnce()) {
        if (!this.done) this.deadline = sentAt + this.ttlMs - this.margin;
      } else {
        this.lose();
      }
    } catch {
      // Redis unreachable: the deadline runs out by itself.
    }
  }

  private lose(): void {
    if (this.lostWith) return;
    this.stop();
    this.lostWith = new LeaseLostError();
    this.listener?.(this.lostWith);
  }

  stop(): void {
    this.done = true;
    clearInterval(this.timer);
  }
}

