/**
 * Pure helpers of the progress stream, with an injectable clock for tests: a throttle (runs at
 * most once per interval, the last trigger always honoured) and the speed over a sliding window.
 */

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Runs `fn` when triggered, but never two runs starting less than `intervalMs` apart and never two
 * at once; a trigger during the wait or a run is not lost (one run follows). So at most
 * 1000 / intervalMs runs per second, and the latest state is always delivered.
 */
export class Throttle {
  private last = -Infinity;
  private timer: unknown = null;
  private running = false;
  private pending = false;
  private stopped = false;
  private current: Promise<void> | null = null;

  constructor(
    private readonly fn: () => Promise<void> | void,
    private readonly intervalMs: number,
    private readonly clock: Clock = realClock,
  ) {}

  trigger(): void {
    if (this.stopped) return;
    this.pending = true;
    if (this.running || this.timer !== null) return;
    const wait = this.last + this.intervalMs - this.clock.now();
    if (wait <= 0) this.current = this.run();
    else {
      this.timer = this.clock.setTimeout(() => {
        this.timer = null;
        this.current = this.run();
      }, wait);
    }
  }

  /** Resolves once no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.current;
  }

  private async run(): Promise<void> {
    if (this.stopped || !this.pending) return;
    this.pending = false;
    this.running = true;
    this.last = this.clock.now();
    try {
      await this.fn();
    } catch {
      // The caller's failure; the next trigger runs again.
    } finally {
      this.running = false;
      if (this.pending) this.trigger();
    }
  }

  /** No further runs; a pending timer is cleared. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Whether a timer is pending (tests check nothing is left behind). */
  get scheduled(): boolean {
    return this.timer !== null;
  }
}

/** Bytes per second over the last `windowMs`, from (time, bytes received) samples. */
export class RateWindow {
  private samples: Array<{ t: number; received: number }> = [];

  constructor(private readonly windowMs = 5000) {}

  /** Adds a sample and returns the speed (0 until two samples at least 200 ms apart). */
  add(t: number, received: number): number {
    const last = this.samples[this.samples.length - 1];
    // Bytes dropped out (a failed segment): the window starts again.
    if (last && received < last.received) this.samples = [];
    this.samples.push({ t, received });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    return dt >= 0.2 ? Math.round((received - first.received) / dt) : 0;
  }
}

/** Seconds left at `bytesPerSecond` (one decimal); null while unknown; 0 when nothing is left. */
export function etaSeconds(received: number, total: number | null, bytesPerSecond: number): number | null {
  if (total === null || total < 0) return null;
  const left = total - received;
  if (left <= 0) return 0;
  return bytesPerSecond > 0 ? Math.round((left / bytesPerSecond) * 10) / 10 : null;
}
