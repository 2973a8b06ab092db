/**
 * The pure parts of the progress stream: event bytes, the throttle (at most one event per
 * interval, the last state never lost), speed and ETA, and how an entry's requests in flight and
 * acknowledged ranges add up (a resumable session counts all its segments).
 */
import fc from 'fast-check';
import { FINAL_EVENT_ID, formatComment, formatEvent, formatProgressEvent, percentOf } from '../../src/protocol/sse';
import { etaSeconds, RateWindow, Throttle, type Clock } from '../../src/progress/rate';
import { eventData } from '../../src/progress/report';
import { snapshotOf, STALE_IN_FLIGHT_MS, unionOf, type ProgressEntry } from '../../src/progress/types';
import { progressView } from '../../src/protocol/upload-progress';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await Promise.resolve();
      await Promise.resolve();
    }
    this.t = end;
  }
  get pending(): number {
    return this.timers.length;
  }
}

describe('event stream format', () => {
  test('fields, multi-line data, comments', () => {
    expect(formatEvent({ data: 'a' })).toBe('data: a\n\n');
    expect(formatEvent({ id: '3', event: 'x', retry: 2000, data: 'l1\nl2\r\nl3' })).toBe('event: x\nid: 3\nretry: 2000\ndata: l1\ndata: l2\ndata: l3\n\n');
    expect(formatEvent({ retry: 1500.7 })).toBe('retry: 1500\n\n');
    expect(formatEvent({ id: 'a\nb' })).toBe('id: a b\n\n');
    expect(formatComment('keep-alive')).toBe(': keep-alive\n\n');
  });

  test('a progress event: numbered id, the final one `final`, JSON data on one line', () => {
    const data = { id: 's', state: 'uploading' as const, received: 1, total: 2, percent: 50, bytesPerSecond: 0, etaSeconds: null, ranges: [{ start: 0, end: 0 }], status: 0 };
    expect(formatProgressEvent(data, 7, false)).toBe(`id: 7\ndata: ${JSON.stringify(data)}\n\n`);
    expect(formatProgressEvent({ ...data, state: 'done' }, 8, true)).toMatch(new RegExp(`^id: ${FINAL_EVENT_ID}\n`));
  });

  test('percent with two decimals, null while the total is unknown', () => {
    expect(percentOf(1, 3)).toBe(33.33);
    expect(percentOf(3, 3)).toBe(100);
    expect(percentOf(0, 0)).toBe(100);
    expect(percentOf(5, null)).toBeNull();
    expect(percentOf(5, -1)).toBeNull();
  });
});

describe('Throttle', () => {
  test('first trigger runs at once, later ones at most once per interval, the last one never lost', async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    const throttle = new Throttle(() => void runs.push(clock.now()), 100, clock);
    throttle.trigger();
    await Promise.resolve();
    expect(runs).toEqual([0]);
    for (let t = 0; t < 1000; t += 7) {
      await clock.advance(7);
      throttle.trigger();
    }
    await clock.advance(200);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeGreaterThanOrEqual(100);
    // ≤ 10 per second, and the trailing trigger ran.
    expect(runs.length).toBeLessThanOrEqual(12);
    expect(runs[runs.length - 1]!).toBeGreaterThanOrEqual(994);
    expect(clock.pending).toBe(0);
  });

  test('property: run starts are ≥ interval apart for any trigger pattern', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 250 }), { minLength: 1, maxLength: 40 }), async (gaps) => {
        const clock = new FakeClock();
        const runs: number[] = [];
        const throttle = new Throttle(() => void runs.push(clock.now()), 100, clock);
        for (const gap of gaps) {
          await clock.advance(gap);
          throttle.trigger();
        }
        await clock.advance(500);
        for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeGreaterThanOrEqual(100);
        expect(runs.length).toBeGreaterThanOrEqual(1);
        expect(clock.pending).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  test('an async run is never overlapped; a trigger during it runs once afterwards', async () => {
    const clock = new FakeClock();
    let release!: () => void;
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const throttle = new Throttle(
      () =>
        new Promise<void>((resolve) => {
          runs++;
          running++;
          maxRunning = Math.max(maxRunning, running);
          release = () => {
            running--;
            resolve();
          };
        }),
      100,
      clock,
    );
    throttle.trigger();
    await clock.advance(150);
    throttle.trigger();
    throttle.trigger();
    await clock.advance(150);
    expect(runs).toBe(1);
    release();
    await clock.advance(1);
    await clock.advance(1);
    expect(runs).toBe(2);
    release();
    expect(maxRunning).toBe(1);
  });

  test('stop clears a pending timer and ignores later triggers', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const throttle = new Throttle(() => void runs++, 100, clock);
    throttle.trigger();
    throttle.trigger();
    await Promise.resolve();
    await Promise.resolve();
    expect(throttle.scheduled).toBe(true);
    throttle.stop();
    expect(throttle.scheduled).toBe(false);
    expect(clock.pending).toBe(0);
    throttle.trigger();
    await clock.advance(500);
    expect(runs).toBe(1);
  });
});

describe('speed and ETA', () => {
  test('bytes per second over the window; a drop restarts it', () => {
    const rate = new RateWindow(5000);
    expect(rate.add(0, 0)).toBe(0);
    expect(rate.add(100, 100)).toBe(0); // < 200 ms of samples
    expect(rate.add(1000, 1000)).toBe(1000);
    expect(rate.add(2000, 3000)).toBe(1500);
    expect(rate.add(2500, 500)).toBe(0); // a failed segment's bytes dropped out
    expect(rate.add(3500, 1500)).toBe(1000);
  });

  test('old samples leave the window (the last one before it stays as its start)', () => {
    const rate = new RateWindow(1000);
    rate.add(0, 0);
    rate.add(500, 10_000);
    rate.add(1500, 11_000);
    expect(rate.add(2000, 12_000)).toBe(1333);
    expect(rate.add(3000, 13_000)).toBe(1000);
  });

  test('ETA: seconds left at that speed, null while unknown, 0 when nothing is left', () => {
    expect(etaSeconds(500, 1000, 100)).toBe(5);
    expect(etaSeconds(0, 1000, 300)).toBe(3.3);
    expect(etaSeconds(500, 1000, 0)).toBeNull();
    expect(etaSeconds(1000, 1000, 0)).toBe(0);
    expect(etaSeconds(5, null, 100)).toBeNull();
  });
});

describe('an entry as probes see it', () => {
  const base = (over: Partial<ProgressEntry>): ProgressEntry => ({
    id: 'p', kind: 'session', session: 's', size: 1000, acknowledged: [], inFlight: {}, received: 0, finished: false, status: 0, createdAt: 0, updatedAt: 0, ...over,
  });

  test('a session counts acknowledged ranges plus the bytes of every segment in flight', () => {
    const now = 10_000;
    const entry = base({
      acknowledged: [{ start: 0, end: 99 }, { start: 500, end: 599 }],
      inFlight: { a: { start: 100, received: 50, at: now }, b: { start: 600, received: 400, at: now }, c: { start: 900, received: 0, at: now } },
    });
    expect(snapshotOf(entry, now)).toEqual({ size: 1000, received: 650, finished: false, status: 0, ranges: [{ start: 0, end: 149 }, { start: 500, end: 999 }] });
  });

  test('requests silent for a minute (a dead instance) no longer count', () => {
    const entry = base({ inFlight: { dead: { start: 0, received: 500, at: 0 }, live: { start: 500, received: 10, at: STALE_IN_FLIGHT_MS } } });
    expect(snapshotOf(entry, STALE_IN_FLIGHT_MS + 1).received).toBe(10);
  });

  test('a request: its bytes so far, then what it received in the end', () => {
    expect(snapshotOf(base({ kind: 'request', session: undefined, size: 3000, inFlight: { a: { start: 0, received: 2000, at: 5 } } }), 5)).toMatchObject({ received: 2000, ranges: [{ start: 0, end: 1999 }] });
    expect(snapshotOf(base({ kind: 'request', session: undefined, size: 3000, received: 3000, finished: true }), 5)).toMatchObject({ received: 3000, finished: true });
  });

  test('event data: percent, ETA 0 and 100 % when done, speed only while uploading', () => {
    const snap = { size: 1000, received: 250, finished: false, status: 0, ranges: [{ start: 0, end: 249 }] };
    expect(eventData('p', progressView(snap), snap, 125)).toEqual({ id: 'p', state: 'uploading', received: 250, total: 1000, percent: 25, bytesPerSecond: 125, etaSeconds: 6, ranges: [{ start: 0, end: 249 }], status: 0 });
    const done = { ...snap, received: 1000, finished: true, ranges: [{ start: 0, end: 999 }] };
    expect(eventData('p', progressView(done), done, 125)).toMatchObject({ state: 'done', percent: 100, etaSeconds: 0, bytesPerSecond: 0 });
    expect(eventData('p', progressView(undefined), undefined, 0)).toEqual({ id: 'p', state: 'starting', received: 0, total: null, percent: null, bytesPerSecond: 0, etaSeconds: null, ranges: [], status: 0 });
    const failed = { ...snap, finished: true, status: 409 };
    expect(eventData('p', progressView(failed), failed, 9)).toMatchObject({ state: 'error', status: 409, etaSeconds: null });
  });

  test('unionOf merges and sorts', () => {
    expect(unionOf([{ start: 5, end: 9 }, { start: 0, end: 4 }, { start: 20, end: 21 }, { start: 3, end: 1 }])).toEqual([{ start: 0, end: 9 }, { start: 20, end: 21 }]);
  });
});
