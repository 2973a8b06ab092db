/**
 * `upload_limit_rate` (§7): by whole second t after the start, at most R·(t+1) bytes are taken.
 * Callers await `admit(total)` after taking bytes; backpressure then slows the client down.
 */
export class ReadRateLimit {
  private readonly startedAt = Date.now();

  constructor(private readonly bytesPerSecond: number) {}

  async admit(totalTaken: number): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    for (;;) {
      const elapsed = Date.now() - this.startedAt;
      if (totalTaken <= this.bytesPerSecond * (Math.floor(elapsed / 1000) + 1)) return;
      await new Promise((resolve) => setTimeout(resolve, 1000 - (elapsed % 1000)));
    }
  }
}
