/**
 * The session rules (src/session/model.ts) and the journal's line format, as pure functions:
 * any order, overlap and duplication of segments gives the ranges of a simple model (a set of
 * byte offsets), exactly one segment claims the hand-off, and replaying the journal records the
 * decisions produced gives exactly the live state.
 */
import fc from 'fast-check';
import { decodeRecords, encodeRecords } from '../../src/session/journal-codec';
import { applyRecord, replay, snapshotRecords, WHOLE_FILE_UNKNOWN, type Actor, type JournalRecord, type SessionPolicy, type SessionRecord, type SessionState } from '../../src/session/model';
import { decideBegin, decideCommit, decideFinish, decideRelease, decideSweep, uploadState } from '../../src/session/rules';

const policy: SessionPolicy = { sessionTimeoutMs: 60_000, completedRetentionMs: 10_000, handoffTimeoutMs: 5_000 };
const actor: Actor = { instanceId: 'me', singleInstance: true };
const meta = { fileName: 'f.bin', contentType: 'application/octet-stream', fieldName: '' };

function segment(start: number, end: number, total: number | null) {
  return { id: 's1', start, end, total, meta, dataPath: '/store/1/s1' };
}

/** Runs segments through begin + commit in order, collecting the journal; returns the live state and the records. */
function run(total: number, segments: Array<[number, number]>, now = 1000) {
  let state: SessionState = {};
  const records: JournalRecord[] = [];
  const outcomes: string[] = [];
  for (const [start, end] of segments) {
    const begin = decideBegin(state.record, state.tombstone, segment(start, end, total), [], now, policy, actor);
    if (begin.kind === 'refuse' || begin.kind === 'expired') {
      outcomes.push(begin.kind);
      continue;
    }
    if (begin.kind === 'create') {
      const header: JournalRecord = { t: 'h', r: begin.record };
      const file: JournalRecord = { t: 'f', f: '42' };
      records.push(header, file);
      state = applyRecord(applyRecord(state, header), file);
    }
    const commit = decideCommit(state.record, { createdAt: state.record!.createdAt, start, end, total, meta }, now, policy, actor);
    outcomes.push(commit.kind);
    if (commit.kind === 'partial' || commit.kind === 'handoff') {
      records.push(...commit.records);
      state = commit.records.reduce(applyRecord, state);
      expect(state.record).toEqual(commit.record);
    }
    if (commit.kind === 'handoff') {
      const finish = decideFinish(state.record, { status: 200, statusMessage: 'OK', headers: [], bodyBase64: '', completedAt: now, fileRemoved: false }, now, policy);
      records.push(...finish);
      state = finish.reduce(applyRecord, state);
    }
  }
  return { state, records, outcomes };
}

const segmentsOf = (total: number) =>
  fc.array(
    fc.tuple(fc.nat(total - 1), fc.nat(total - 1)).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]),
    { minLength: 1, maxLength: 40 },
  );

describe('session rules (pure)', () => {
  test('any order, overlap and duplication of segments gives the ranges of a simple model; one hand-off exactly when every byte arrived', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }).chain((total) => fc.tuple(fc.constant(total), segmentsOf(total))), ([total, segments]) => {
        const { state, outcomes } = run(total, segments);
        const seen = new Set<number>();
        let completedAt = -1;
        segments.forEach(([s, e], k) => {
          for (let b = s; b <= e; b++) seen.add(b);
          if (completedAt < 0 && seen.size === total) completedAt = k;
        });
        // Ranges: exactly the model's bytes, merged.
        const covered = new Set<number>();
        for (const r of state.record!.ranges) for (let b = r.start; b <= r.end; b++) covered.add(b);
        expect([...covered].sort((a, b) => a - b)).toEqual([...seen].sort((a, b) => a - b));
        for (let k = 1; k < state.record!.ranges.length; k++) expect(state.record!.ranges[k]!.start).toBeGreaterThan(state.record!.ranges[k - 1]!.end + 1);
        // Exactly one hand-off, by the segment that completed the file; later ones are replays.
        expect(outcomes.filter((o) => o === 'handoff')).toHaveLength(completedAt < 0 ? 0 : 1);
        if (completedAt >= 0) {
          expect(outcomes[completedAt]).toBe('handoff');
          expect(outcomes.slice(completedAt + 1).every((o) => o === 'replay')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('replaying the journal gives exactly the live state; so does replaying its snapshot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }).chain((total) => fc.tuple(fc.constant(total), segmentsOf(total))), ([total, segments]) => {
        const { state, records } = run(total, segments);
        expect(replay(records)).toEqual(state);
        expect(replay(snapshotRecords(state))).toEqual(state);
        // Through the on-disk form too.
        expect(replay(decodeRecords(encodeRecords(records)).records)).toEqual(state);
      }),
      { numRuns: 200 },
    );
  });

  test('a total that differs is 409 (D3); a completed session refuses another total with its reason (D9)', () => {
    const { state } = run(10, [[0, 4]]);
    const other = decideBegin(state.record, undefined, segment(0, 3, 12), [], 1000, policy, actor);
    expect(other).toMatchObject({ kind: 'refuse', status: 409, reason: 'total 12 differs from the session\'s total 10' });
    const done = run(4, [[0, 3]]).state;
    expect(decideBegin(done.record, undefined, segment(0, 1, 2), [], 1000, policy, actor)).toMatchObject({ kind: 'refuse', status: 409, reason: expect.stringMatching(/already completed an upload of 4 bytes/) });
    // The same total joins (a repeat is compared and replayed, D7).
    expect(decideBegin(done.record, undefined, segment(0, 3, 4), [], 1000, policy, actor).kind).toBe('join');
  });

  test('a range overlapping one in flight is 503; touching is not overlapping (D4)', () => {
    const { state } = run(10, [[0, 1]]);
    expect(decideBegin(state.record, undefined, segment(3, 5, 10), [{ start: 5, end: 6 }], 1000, policy, actor)).toMatchObject({ kind: 'refuse', status: 503 });
    expect(decideBegin(state.record, undefined, segment(3, 5, 10), [{ start: 6, end: 7 }], 1000, policy, actor).kind).toBe('join');
  });

  test('a single-shot upload of unknown length reserves the whole file, learns its total at commit, and hands off', () => {
    const begin = decideBegin(undefined, undefined, segment(0, Number.MAX_SAFE_INTEGER, null), [], 1000, policy, actor);
    expect(begin).toMatchObject({ kind: 'create', reserve: WHOLE_FILE_UNKNOWN });
    const state = applyRecord(applyRecord({}, { t: 'h', r: (begin as { record: SessionRecord }).record }), { t: 'f', f: '7' });
    expect(state.record!.total).toBeNull();
    // Anything else waits while it is in flight.
    expect(decideBegin(state.record, undefined, segment(0, 1, 2), [], 1000, policy, actor)).toMatchObject({ kind: 'refuse', status: 503 });
    const commit = decideCommit(state.record, { createdAt: 1000, start: 0, end: 4, total: 5, meta }, 1000, policy, actor);
    expect(commit.kind).toBe('handoff');
    expect(commit.kind === 'handoff' && commit.record.total).toBe(5);
    // Joining a known session, it claims exactly the session's bytes.
    const done = run(5, [[0, 1]]).state;
    expect(decideBegin(done.record, undefined, segment(0, Number.MAX_SAFE_INTEGER, null), [], 1000, policy, actor)).toMatchObject({ kind: 'join', reserve: { start: 0, end: 4 } });
  });

  test('hand-off claims: live for the claimant, abandoned after the timeout or when made by another (dead) process; release and finish', () => {
    const { state } = run(4, [[0, 1]]);
    const handoff = decideCommit(state.record, { createdAt: 1000, start: 2, end: 3, total: 4, meta }, 1000, policy, actor);
    expect(handoff.kind).toBe('handoff');
    const claimed = (handoff as { record: SessionRecord }).record;
    expect(uploadState(claimed, 2000, policy, actor)).toBe('handing-off');
    expect(decideCommit(claimed, { createdAt: 1000, start: 0, end: 1, total: 4, meta }, 2000, policy, actor)).toMatchObject({ kind: 'refuse', status: 503 });
    // Abandoned: by time, or (single instance) made by another process.
    expect(uploadState(claimed, 1000 + policy.handoffTimeoutMs + 1, policy, actor)).toBe('incomplete');
    expect(uploadState(claimed, 2000, policy, { instanceId: 'other', singleInstance: true })).toBe('incomplete');
    expect(uploadState(claimed, 2000, policy, { instanceId: 'other', singleInstance: false })).toBe('handing-off');
    expect(decideCommit(claimed, { createdAt: 1000, start: 0, end: 1, total: 4, meta }, 1000 + policy.handoffTimeoutMs + 1, policy, actor).kind).toBe('handoff');
    // Release drops only that claim.
    expect(decideRelease(claimed, { owner: 'me', startedAt: 999 })).toEqual([]);
    const released = replay([{ t: 'h', r: claimed }, ...decideRelease(claimed, claimed.handoff!)]).record!;
    expect(released.handoff).toBeUndefined();
    expect(decideCommit(released, { createdAt: 1000, start: 0, end: 1, total: 4, meta }, 2000, policy, actor).kind).toBe('handoff');
    // The first answer stays.
    const answered = replay([{ t: 'h', r: claimed }, ...decideFinish(claimed, { status: 200, statusMessage: 'OK', headers: [['X', '1']], bodyBase64: 'YQ==', completedAt: 3, fileRemoved: false }, 3000, policy)]).record!;
    expect(answered.expiresAt).toBe(3000 + policy.completedRetentionMs);
    expect(decideFinish(answered, { status: 500, statusMessage: 'x', headers: [], bodyBase64: '', completedAt: 4, fileRemoved: false }, 4000, policy)).toEqual([]);
  });

  test('expiry: incomplete sessions expire, completed ones retire to a tombstone that a new session of the id replaces (D9)', () => {
    const partial = run(10, [[0, 4]], 1000).state.record!;
    expect(decideSweep(partial, 1000)).toBe('keep');
    expect(decideSweep(partial, 1000 + policy.sessionTimeoutMs)).toBe('expire');
    expect(decideBegin(partial, undefined, segment(0, 4, 10), [], 1000 + policy.sessionTimeoutMs, policy, actor).kind).toBe('expired');
    const done = run(4, [[0, 3]], 1000).state.record!;
    expect(decideSweep(done, 1000 + policy.completedRetentionMs)).toBe('retire');
    expect(decideSweep({ ...done, completion: { ...done.completion!, fileRemoved: true } }, 1000 + policy.completedRetentionMs)).toBe('expire');
    const tombstone = { id: 's1', dataPath: '/store/1/s1', fileId: '42', retiredAt: 5 };
    const fresh = decideBegin(undefined, tombstone, segment(0, 1, 2), [], 9000, policy, actor);
    expect(fresh).toMatchObject({ kind: 'create', record: { replaces: '42', fileId: null, ranges: [] } });
    // Another location's path is not this tombstone's file.
    expect(decideBegin(undefined, tombstone, { ...segment(0, 1, 2), dataPath: '/elsewhere/s1' }, [], 9000, policy, actor)).toMatchObject({ record: { replaces: null } });
    // Recording the new file forgets the one it replaced.
    expect(applyRecord({ record: (fresh as { record: SessionRecord }).record }, { t: 'f', f: '43' }).record).toMatchObject({ fileId: '43', replaces: null });
  });
});

describe('journal line format', () => {
  const sample: JournalRecord[] = [
    { t: 'h', r: { id: 'x', total: 9, ranges: [], dataPath: '/s/x', fileId: null, replaces: null, ...meta, fileName: 'ü"\n.bin', createdAt: 1, updatedAt: 1, expiresAt: 2 } },
    { t: 'f', f: '123456789012345678' },
    { t: 'r', s: 0, e: 4, u: 5, x: 6 },
    { t: 'c', o: 'me', at: 7, m: meta },
  ];

  test('round trip, one line per record, readable JSON', () => {
    const data = encodeRecords(sample);
    expect(data.toString().split('\n')).toHaveLength(sample.length + 1);
    expect(decodeRecords(data)).toEqual({ records: sample, goodLength: data.length });
  });

  test('a torn tail (cut at any byte) keeps exactly the whole lines before it', () => {
    const data = encodeRecords(sample);
    const ends = [0];
    for (let i = 0; i < data.length; i++) if (data[i] === 0x0a) ends.push(i + 1);
    for (let cut = 0; cut <= data.length; cut++) {
      const good = Math.max(...ends.filter((e) => e <= cut));
      const decoded = decodeRecords(data.subarray(0, cut));
      expect(decoded.goodLength).toBe(good);
      expect(decoded.records).toEqual(sample.slice(0, ends.indexOf(good)));
    }
  });

  test('a damaged byte stops replay at its line (never a wrong record)', () => {
    const data = encodeRecords(sample);
    fc.assert(
      fc.property(fc.nat(data.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const damaged = Buffer.from(data);
        damaged[at] = damaged[at]! ^ xor;
        const decoded = decodeRecords(damaged);
        // Every decoded record is one of the originals, in order, from the start.
        expect(decoded.records).toEqual(sample.slice(0, decoded.records.length));
        expect(decoded.goodLength).toBeLessThanOrEqual(at + 1);
      }),
      { numRuns: 500 },
    );
  });
});
