/**
 * Progress aggregation: bytes the server acknowledged plus bytes of segments in flight, speed over
 * a sliding window, ETA, and a throttle (at most one event per `intervalMs`, the last state always
 * delivered). The clock and timers are injectable for tests.
 */

export interface Progress {
  /** Bytes acknowledged by the server plus bytes of segments being sent now. */
  loaded: number;
  total: number;
  /** 0–100. */
  percent: number;
  /** Bytes put on the wire per second over the last few seconds (0 until known). */
  bytesPerSecond: number;
  /** Seconds left at that speed; `null` while the speed is unknown. */
  etaSeconds: number | null;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface ProgressOptions {
  /** Minimum time between two events (default 100 ms: at most 10 events per second). */
  intervalMs?: number;
  /** Window of the speed average (default 5 s). */
  windowMs?: number;
  clock?: Clock;
}

export class ProgressTracker {
  private acknowledged = 0;
  private readonly inFlight = new Map<number, number>();
  /** Cumulative bytes sent (failed attempts included), for the speed. */
  private sent = 0;
  private readonly samples: Array<{ t: number; sent: number }> = [];
  private lastEmit = -Infinity;
  private timer: unknown = null;
  private dirty = false;
  private stopped = false;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly total: number,
    private readonly listener: ((p: Progress) => void) | undefined,
    options: ProgressOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 100;
    this.windowMs = options.windowMs ?? 5000;
    this.clock = options.clock ?? realClock;
    this.samples.push({ t: this.clock.now(), sent: 0 });
  }

  /** Bytes the server holds (from its range list). */
  setAcknowledged(bytes: number): void {
    this.acknowledged = bytes;
    this.changed();
  }

  /** Bytes of segment `id` sent so far. */
  setInFlight(id: number, loaded: number): void {
    const before = this.inFlight.get(id) ?? 0;
    if (loaded > before) this.sent += loaded - before;
    this.inFlight.set(id, loaded);
    this.changed();
  }

  /**
   * Segment `id` ended (failed: its bytes drop out). When it was acknowledged, pass
   * `notify = false` and call `setAcknowledged` right after, so no event shows the dip between.
   */
  endInFlight(id: number, notify = true): void {
    if (this.inFlight.delete(id) && notify) this.changed();
  }

  snapshot(): Progress {
    let loaded = this.acknowledged;
    for (const v of this.inFlight.values()) loaded += v;
    loaded = Math.min(this.total, loaded);
    const now = this.clock.now();
    this.samples.push({ t: now, sent: this.sent });
    while (this.samples.length > 2 && now - this.samples[1]!.t >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (now - first.t) / 1000;
    const bytesPerSecond = dt >= 0.05 ? Math.round((this.sent - first.sent) / dt) : 0;
    const left = this.total - loaded;
    const etaSeconds = left === 0 ? 0 : bytesPerSecond > 0 ? Math.round((left / bytesPerSecond) * 10) / 10 : null;
    const percent = this.total > 0 ? Math.round((loaded / this.total) * 10000) / 100 : 100;
    return { loaded, total: this.total, percent, bytesPerSecond, etaSeconds };
  }

  private changed(): void {
    if (!this.listener || this.stopped) return;
    this.dirty = true;
    const wait = this.lastEmit + this.intervalMs - this.clock.now();
    if (wait <= 0) this.emit();
    else if (this.timer === null) this.timer = this.clock.setTimeout(() => this.emit(), wait);
  }

  private emit(): void {
    if (this.timer !== null) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.dirty || this.stopped) return;
    this.dirty = false;
    this.lastEmit = this.clock.now();
    try {
      this.listener!(this.snapshot());
    } catch {
      // A throwing listener must not break the upload.
    }
  }

  /** Delivers the pending state (waiting out the throttle if needed), then stops. */
  finish(): Promise<void> {
    if (!this.listener || this.stopped || !this.dirty) {
      this.stop();
      return Promise.resolve();
    }
    const wait = this.lastEmit + this.intervalMs - this.clock.now();
    return new Promise((resolve) => {
      const done = () => {
        this.emit();
        this.stop();
        resolve();
      };
      if (this.timer !== null) this.clock.clearTimeout(this.timer);
      if (wait <= 0) done();
      else this.timer = this.clock.setTimeout(done, wait);
    });
  }

  /** No further events. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
