/**
 * The client's pure core (client/src/core): range lists in both formats, missing-range planning,
 * the retry policy, progress aggregation and throttling, the legacy headers (checked against the
 * gateway's own parser), the browser-side MD5/SHA-256 (against node:crypto) and sessionIdFor.
 */
import { createHash } from 'node:crypto';
import { writeFileSync, utimesSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  coveredBytes,
  formatRangeList,
  isComplete,
  missingRanges,
  normalise,
  parseRangeList,
  planSegments,
  union,
  type ByteRange,
} from '../../src/protocol/range-set';
import { backoffDelay, errorForAnswer, isRetryable, NetworkError, retryAfterMs, sleep, UploadError } from '../../client/src/core/retry';
import { ProgressTracker, type Clock, type Progress } from '../../client/src/core/progress';
import { checksumHeader, contentDisposition, toBase64 } from '../../client/src/core/headers';
import { md5, sha256 } from '../../client/src/core/hash';
import { sessionIdForSource } from '../../client/src/core/session-id';
import { openNodeSource } from '../../client/src/node/platform';
import { parseHeaderBlock } from '../../client/src/browser/platform';
import { parseContentDisposition } from '../../src/protocol/content-disposition';
import { parseChecksumHeaders } from '../../src/protocol/checksum';
import { tempDir } from '../helpers/process';

/** Arbitrary normalised range sets within 0…total−1. */
const rangeSet = (total: number) =>
  fc.array(fc.tuple(fc.nat(total - 1), fc.nat(total - 1)), { maxLength: 12 }).map((pairs) =>
    normalise(pairs.map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) }))),
  );

function bytesOf(set: readonly ByteRange[]): Set<number> {
  const out = new Set<number>();
  for (const r of set) for (let i = r.start; i <= r.end; i++) out.add(i);
  return out;
}

describe('range lists', () => {
  test("parses the module's format and the original README's compact form", () => {
    expect(parseRangeList('0-4/12,9-10/12')).toEqual({ ranges: [{ start: 0, end: 4 }, { start: 9, end: 10 }], total: 12 });
    expect(parseRangeList('0-5,9-15/24')).toEqual({ ranges: [{ start: 0, end: 5 }, { start: 9, end: 15 }], total: 24 });
    expect(parseRangeList(' 0-1/3 ')).toEqual({ ranges: [{ start: 0, end: 1 }], total: 3 });
    expect(parseRangeList('')).toEqual({ ranges: [], total: undefined });
    // Touching and unsorted entries are merged (the module never sends them, a proxy might).
    expect(parseRangeList('5-9/20,0-4/20')).toEqual({ ranges: [{ start: 0, end: 9 }], total: 20 });
  });

  test('refuses malformed lists', () => {
    for (const bad of ['complete', '0-4/12,', '4-0/12', '0-12/12', '0-4/12,5-6/13', 'bytes 0-4/12', '-4/12', '0-4/1e3', '0-99999999999999999999/1']) {
      expect(parseRangeList(bad)).toBeNull();
    }
  });

  test('format ∘ parse is the identity on normalised sets', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }).chain((total) => fc.tuple(fc.constant(total), rangeSet(total))), ([total, set]) => {
        const text = formatRangeList(set, total);
        expect(parseRangeList(text)).toEqual({ ranges: set, total: set.length ? total : undefined });
      }),
    );
  });

  test('missing ranges are exactly the complement, and the plan covers them in segments', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }).chain((total) => fc.tuple(fc.constant(total), rangeSet(total), fc.integer({ min: 1, max: 64 }))),
        ([total, set, segmentSize]) => {
          const have = bytesOf(set);
          const missing = missingRanges(set, total);
          const lacking = bytesOf(missing);
          for (let i = 0; i < total; i++) expect(have.has(i) !== lacking.has(i)).toBe(true);
          const plan = planSegments(missing, segmentSize);
          expect(plan.every((s) => s.end - s.start + 1 <= segmentSize && s.start <= s.end)).toBe(true);
          expect(bytesOf(plan)).toEqual(lacking);
          expect(coveredBytes(union(set, missing))).toBe(total);
          expect(isComplete(union(set, missing), total)).toBe(true);
        },
      ),
    );
  });

  test('missing ranges within one segment', () => {
    const set = [{ start: 0, end: 9 }, { start: 20, end: 29 }];
    expect(missingRanges(set, 100, { start: 5, end: 35 })).toEqual([{ start: 10, end: 19 }, { start: 30, end: 35 }]);
    expect(missingRanges(set, 100, { start: 0, end: 9 })).toEqual([]);
    expect(missingRanges([], 10)).toEqual([{ start: 0, end: 9 }]);
  });
});

describe('retry policy', () => {
  const answer = (status: number, headers: Record<string, string> = {}) => ({ status, statusText: '', headers, body: 'reason\n' });

  test('network errors, 5xx, 408, 429 (and 460) are retried; other 4xx are final', () => {
    expect(isRetryable(new NetworkError('reset'))).toBe(true);
    for (const s of [500, 502, 503, 504, 408, 429, 460]) expect(isRetryable(errorForAnswer(answer(s), 'x'))).toBe(true);
    for (const s of [400, 401, 403, 404, 409, 413, 415, 416]) expect(isRetryable(errorForAnswer(answer(s), 'x'))).toBe(false);
    expect(isRetryable(new Error('bug'))).toBe(false);
    expect(errorForAnswer(answer(409), 'segment failed').message).toBe('segment failed: 409 : reason');
  });

  test('Retry-After in seconds or as a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000 + 5000).toUTCString(), 10_000)).toBe(5000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  test('exponential back-off with jitter, capped, never below Retry-After', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }, undefined, () => r);
        const exp = Math.min(5000, 100 * 2 ** (attempt - 1));
        expect(d).toBeGreaterThanOrEqual(Math.floor(exp / 2));
        expect(d).toBeLessThanOrEqual(exp);
      }),
    );
    expect(backoffDelay(1, { baseMs: 100, maxMs: 5000 }, 7000, () => 0.5)).toBe(7000);
  });

  test('sleep rejects with the abort reason', async () => {
    const ctl = new AbortController();
    const p = sleep(10_000, ctl.signal);
    ctl.abort(new UploadError('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});

describe('progress', () => {
  /** A manual clock: timers fire when the test advances time. */
  function fakeClock() {
    let now = 0;
    let timers: Array<{ at: number; fn: () => void; id: number }> = [];
    let ids = 0;
    const clock: Clock = {
      now: () => now,
      setTimeout: (fn, ms) => {
        const id = ++ids;
        timers.push({ at: now + ms, fn, id });
        return id;
      },
      clearTimeout: (id) => {
        timers = timers.filter((t) => t.id !== id);
      },
    };
    const advance = (ms: number) => {
      const until = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = due.at;
        timers = timers.filter((t) => t !== due);
        due.fn();
      }
      now = until;
    };
    return { clock, advance };
  }

  test('acknowledged plus in-flight bytes; at most one event per 100 ms; the last state is delivered', async () => {
    const { clock, advance } = fakeClock();
    const events: Array<Progress & { t: number }> = [];
    const tracker = new ProgressTracker(1000, (p) => events.push({ ...p, t: clock.now() }), { clock });
    tracker.setAcknowledged(100);
    for (let i = 1; i <= 50; i++) {
      tracker.setInFlight(1, i * 10);
      advance(7);
    }
    const times = events.map((e) => e.t);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(100);
    expect(events.length).toBeGreaterThanOrEqual(3);
    tracker.endInFlight(1, false);
    tracker.setAcknowledged(600);
    const finished = tracker.finish();
    advance(200);
    await finished;
    const last = events[events.length - 1]!;
    expect(last).toMatchObject({ loaded: 600, total: 1000, percent: 60 });
    expect(last.bytesPerSecond).toBeGreaterThan(0);
    expect(last.etaSeconds).toBeCloseTo(400 / last.bytesPerSecond, 1);
    // A failed segment's bytes drop out of `loaded` but still count for the speed.
    expect(events.every((e) => e.loaded <= e.total)).toBe(true);
  });

  test('speed over the window and ETA', () => {
    const { clock, advance } = fakeClock();
    const tracker = new ProgressTracker(10_000, undefined, { clock });
    expect(tracker.snapshot()).toMatchObject({ loaded: 0, bytesPerSecond: 0, etaSeconds: null });
    advance(1000);
    tracker.setInFlight(1, 1000);
    const p = tracker.snapshot();
    expect(p.bytesPerSecond).toBe(1000);
    expect(p.etaSeconds).toBe(9);
  });
});

describe('legacy headers', () => {
  test('ASCII names go as the legacy clients send them', () => {
    expect(contentDisposition('f.txt')).toBe('attachment; filename="f.txt"');
    expect(contentDisposition('my file (1).bin')).toBe('attachment; filename="my file (1).bin"');
  });

  test('other names add RFC 8187 filename*, which the gateway decodes to the exact name', () => {
    expect(contentDisposition('naïve résumé.txt')).toBe(`attachment; filename="na_ve r_sum_.txt"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt`);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }), (raw) => {
        const name = raw.replace(/[/\\\x00-\x1f\x7f]/g, 'x');
        const header = contentDisposition(name);
        expect(header).toMatch(/^[\x20-\x7e]+$/);
        const parsed = parseContentDisposition(header);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(Buffer.from(parsed.fileName, 'latin1').toString('utf8')).toBe(name);
      }),
    );
  });

  test('D21 checksum headers are what the gateway verifies', () => {
    const data = Buffer.from('hello world!');
    const [n1, v1] = checksumHeader('md5', createHash('md5').update(data).digest());
    expect(n1).toBe('Content-MD5');
    expect(parseChecksumHeaders({ contentMd5: v1 })).toEqual({ algorithm: 'md5', hex: createHash('md5').update(data).digest('hex'), header: 'Content-MD5' });
    const [n2, v2] = checksumHeader('sha256', createHash('sha256').update(data).digest());
    expect(n2).toBe('Repr-Digest');
    expect(parseChecksumHeaders({ reprDigest: v2 })).toMatchObject({ algorithm: 'sha256', hex: createHash('sha256').update(data).digest('hex') });
  });

  test('XHR header blocks', () => {
    expect(parseHeaderBlock('Range: 0-4/12\r\nX-Upload-Total: 12\r\nx-file-url: /a\r\nX-File-URL: /b\r\n')).toEqual({ range: '0-4/12', 'x-upload-total': '12', 'x-file-url': '/a, /b' });
  });
});

describe('browser digests and base64 (plain JavaScript) match node:crypto', () => {
  test('md5, sha256, base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const buf = Buffer.from(data);
        expect(Buffer.from(md5(data)).toString('hex')).toBe(createHash('md5').update(buf).digest('hex'));
        expect(Buffer.from(sha256(data)).toString('hex')).toBe(createHash('sha256').update(buf).digest('hex'));
        expect(toBase64(data)).toBe(buf.toString('base64'));
      }),
    );
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    expect(Buffer.from(sha256(big)).toString('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });
});

describe('sessionIdFor', () => {
  const sha = async (d: Uint8Array) => createHash('sha256').update(d).digest();

  test('stable for the same file; differs by name, size, mtime, first and last MiB, not by the middle', async () => {
    const dir = tempDir('client-sid-');
    try {
      const MiB = 1024 * 1024;
      const data = Buffer.alloc(3 * MiB, 1);
      const file = path.join(dir, 'a.bin');
      const at = (mtime: number, bytes: Buffer, name = file) => {
        writeFileSync(name, bytes);
        utimesSync(name, mtime, mtime);
      };
      const id = async (p: string) => sessionIdForSource(await openNodeSource(p, {}), sha);
      at(1_700_000_000, data);
      const base = await id(file);
      expect(base).toMatch(/^[0-9a-f]{40}$/);
      expect(await id(file)).toBe(base);
      // The same content under another name, or with another mtime: another session.
      at(1_700_000_000, data, path.join(dir, 'b.bin'));
      expect(await id(path.join(dir, 'b.bin'))).not.toBe(base);
      at(1_700_000_001, data);
      expect(await id(file)).not.toBe(base);
      // Same name, size and mtime (the original's collision): the first or last MiB still tell apart.
      const head = Buffer.from(data);
      head[10] = 2;
      at(1_700_000_000, head);
      expect(await id(file)).not.toBe(base);
      const tail = Buffer.from(data);
      tail[tail.length - 10] = 2;
      at(1_700_000_000, tail);
      expect(await id(file)).not.toBe(base);
      const middle = Buffer.from(data);
      middle[Math.floor(1.5 * MiB)] = 2;
      at(1_700_000_000, middle);
      expect(await id(file)).toBe(base);
      // The Buffer of the same bytes with the same name and mtime gives the same id as the path.
      expect(await sessionIdForSource(await openNodeSource(data, { name: 'a.bin', lastModified: 1_700_000_000_000 }), sha)).toBe(base);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
