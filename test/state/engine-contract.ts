/**
 * The contract every SessionEngine passes (the @tus/server habit: one suite, several backends):
 * the file engine (journals) and the Redis engine (Lua) run the same scenarios over real files and
 * a real redis-server, plus a model-based property test against the pure rules.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { HttpError } from '../../src/protocol/http-errors';
import type { CompletionRecord, SegmentRequest } from '../../src/session/model';
import type { EnginePolicy, SegmentTicket, SessionEngine } from '../../src/state/engine';
import { DataFilePool } from '../../src/store/data-file-pool';
import { writeAllAt } from '../../src/store/files';
import { tempDir } from '../helpers/process';

export interface EngineUnderTest {
  engine: SessionEngine;
  /** The data store directory. */
  store: string;
  /** A new engine on the same state, as after a restart of the process (`engine` is closed first). */
  restart(): Promise<SessionEngine>;
  /** A second instance sharing the state (only where several instances may share it). */
  another?(): Promise<SessionEngine>;
  close(): Promise<void>;
}

export type EngineFactory = (options: { pool: DataFilePool; store: string }) => Promise<EngineUnderTest>;

/** An engine made by `make`, restarted as a new one of `make` on the same state; `another` (if given) makes a second instance. */
export function restartable(store: string, make: () => SessionEngine, another?: () => SessionEngine): EngineUnderTest {
  let engine = make();
  let second: SessionEngine | null = null;
  return {
    get engine() {
      return engine;
    },
    store,
    async restart() {
      await engine.close();
      engine = make();
      return engine;
    },
    ...(another && {
      async another() {
        second ??= another();
        return second;
      },
    }),
    async close() {
      await engine.close();
      await second?.close();
    },
  };
}

export const POLICY: EnginePolicy = {
  sessionTimeoutMs: 60_000,
  completedRetentionMs: 60_000,
  handoffTimeoutMs: 60_000,
  fileMode: 0o600,
  durable: true,
};

const META = { fileName: 'f.bin', contentType: 'application/octet-stream', fieldName: '' };
let counter = 0;

export function newId(prefix = 'c'): string {
  return `${prefix}${process.pid}x${++counter}`;
}

export function segmentOf(store: string, id: string, start: number, end: number, total: number | null): SegmentRequest {
  return { id, start, end, total, meta: META, dataPath: path.join(store, id.slice(-1), id) };
}

export const ANSWER: CompletionRecord = { status: 200, statusMessage: 'OK', headers: [['X-Answer', '1']], bodyBase64: Buffer.from('done').toString('base64'), completedAt: 1, fileRemoved: false };

/** Writes the ticket's bytes (from `file`) where they are new, makes them durable, commits. */
export async function send(engine: SessionEngine, ticket: SegmentTicket, file: Buffer, policy = POLICY) {
  const { start } = ticket.range;
  const end = Math.min(ticket.range.end, file.length - 1);
  if (ticket.file) {
    ticket.fence.check();
    await writeAllAt(ticket.file.handle, [file.subarray(start, end + 1)], start);
    await ticket.file.flush();
  }
  return engine.commit(ticket, { total: file.length, meta: META }, policy);
}

export async function upload(engine: SessionEngine, store: string, id: string, file: Buffer, start: number, end: number, policy = POLICY) {
  const ticket = await engine.begin(segmentOf(store, id, start, end, file.length), policy);
  return send(engine, ticket, file, policy);
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; reason: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, reason: err.message };
    if ((err as Error).name === 'LeaseLostError') return { status: 503, reason: (err as Error).message };
    throw err;
  }
  throw new Error('expected a refusal');
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

export function sessionEngineContract(name: string, factory: EngineFactory): void {
  describe(`SessionEngine contract: ${name}`, () => {
    let pool: DataFilePool;
    let ut: EngineUnderTest;
    let engine: SessionEngine;
    let store: string;
    beforeEach(async () => {
      pool = new DataFilePool();
      store = path.join(tempDir('engine-'), 'store');
      mkdirSync(store);
      ut = await factory({ pool, store });
      engine = ut.engine;
    });
    afterEach(async () => {
      await ut.close();
      await pool.close();
    });

    test('segments in any order: partial, partial, hand-off claimed once; the answer is stored and replayed (D7)', async () => {
      const id = newId();
      const file = Buffer.from('hello world!');
      const a = await upload(engine, store, id, file, 0, 4);
      expect(a).toMatchObject({ kind: 'partial', record: { ranges: [{ start: 0, end: 4 }], total: 12 } });
      const b = await upload(engine, store, id, file, 9, 11);
      expect(b.record.ranges).toEqual([{ start: 0, end: 4 }, { start: 9, end: 11 }]);
      const c = await upload(engine, store, id, file, 5, 8);
      expect(c.kind).toBe('handoff');
      if (c.kind !== 'handoff') return;
      expect(c.claim.owner).toBeTruthy();
      expect(readFileSync(c.record.dataPath).equals(file)).toBe(true);
      expect((await engine.status(id))?.handoff).toEqual(c.claim);
      await engine.finishHandoff(c.record, c.claim, ANSWER, POLICY);
      const status = await engine.status(id);
      expect(status?.completion).toEqual(ANSWER);
      expect(status?.handoff).toBeUndefined();
      // A repeated segment is replayed, not handed off again.
      expect((await upload(engine, store, id, file, 5, 8)).kind).toBe('replay');
      // After a restart, the same.
      engine = await ut.restart();
      expect((await engine.status(id))?.completion).toEqual(ANSWER);
      expect((await upload(engine, store, id, file, 0, 11)).kind).toBe('replay');
    });

    test('another total is 409 (D3); an overlapping segment in flight is 503, a touching one is admitted (D4)', async () => {
      const id = newId();
      const file = Buffer.alloc(100, 7);
      await upload(engine, store, id, file, 0, 9);
      expect(await refusal(engine.begin(segmentOf(store, id, 10, 19, 200), POLICY))).toMatchObject({ status: 409 });
      const inFlight = await engine.begin(segmentOf(store, id, 20, 49, 100), POLICY);
      expect(await refusal(engine.begin(segmentOf(store, id, 40, 59, 100), POLICY))).toMatchObject({ status: 503, reason: expect.stringMatching(/overlaps/) });
      const touching = await engine.begin(segmentOf(store, id, 50, 59, 100), POLICY);
      await send(engine, touching, file);
      await send(engine, inFlight, file);
      expect((await engine.status(id))?.ranges).toEqual([{ start: 0, end: 9 }, { start: 20, end: 59 }]);
    });

    test('a failed first segment leaves nothing: no data file, no session', async () => {
      const id = newId();
      const ticket = await engine.begin(segmentOf(store, id, 0, 9, 10), POLICY);
      expect(existsSync(ticket.record.dataPath)).toBe(true);
      await engine.abort(ticket, POLICY);
      expect(existsSync(ticket.record.dataPath)).toBe(false);
      expect(await engine.status(id)).toBeUndefined();
      // The id starts afresh.
      expect((await upload(engine, store, id, Buffer.from('0123456789'), 0, 9)).kind).toBe('handoff');
    });

    test('a failed segment of a session with acknowledged bytes keeps them; with another segment in flight the new session stays', async () => {
      const id = newId();
      const file = Buffer.from('abcdefghij');
      await upload(engine, store, id, file, 0, 4);
      await engine.abort(await engine.begin(segmentOf(store, id, 5, 9, 10), POLICY), POLICY);
      expect((await engine.status(id))?.ranges).toEqual([{ start: 0, end: 4 }]);
      expect(readFileSync(path.join(store, id.slice(-1), id)).subarray(0, 5).toString()).toBe('abcde');
      const fresh = newId();
      const first = await engine.begin(segmentOf(store, fresh, 0, 4, 10), POLICY);
      const second = await engine.begin(segmentOf(store, fresh, 5, 9, 10), POLICY);
      await engine.abort(first, POLICY);
      expect(existsSync(first.record.dataPath)).toBe(true);
      expect((await send(engine, second, file)).record.ranges).toEqual([{ start: 5, end: 9 }]);
    });

    test('one owner per data file: a session whose name holds another upload\'s file is refused, and the file is untouched', async () => {
      const id = '0000000003';
      const foreign = path.join(store, '3', id);
      mkdirSync(path.dirname(foreign), { recursive: true });
      writeFileSync(foreign, 'a multipart file the backend has not taken yet');
      expect(await refusal(engine.begin(segmentOf(store, id, 0, 3, 4), POLICY))).toMatchObject({ status: 409, reason: expect.stringMatching(/another upload's file/) });
      expect(readFileSync(foreign, 'utf8')).toBe('a multipart file the backend has not taken yet');
      expect(await engine.status(id)).toBeUndefined();
    });

    test('a hand-off claim blocks others while live; releasing it lets the next segment claim at once', async () => {
      const id = newId();
      const file = Buffer.from('abcd');
      const first = await upload(engine, store, id, file, 0, 3);
      expect(first.kind).toBe('handoff');
      if (first.kind !== 'handoff') return;
      expect(await refusal(upload(engine, store, id, file, 0, 3))).toMatchObject({ status: 503, reason: expect.stringMatching(/handed to the backend/) });
      await engine.releaseHandoff(first.record, first.claim, POLICY);
      const retry = await upload(engine, store, id, file, 2, 3);
      expect(retry.kind).toBe('handoff');
      // An abandoned claim (older than the hand-off timeout) is taken over.
      if (retry.kind !== 'handoff') return;
      const quick = { ...POLICY, handoffTimeoutMs: 0 };
      await new Promise((r) => setTimeout(r, 5));
      expect((await upload(engine, store, id, file, 0, 0, quick)).kind).toBe('handoff');
    });

    test('parallel last segments: exactly one claims the hand-off (D7)', async () => {
      const id = newId();
      const file = Buffer.alloc(40, 1);
      await upload(engine, store, id, file, 0, 9);
      const tickets = await Promise.all([[10, 19], [20, 29], [30, 39]].map(([s, e]) => engine.begin(segmentOf(store, id, s!, e!, 40), POLICY)));
      const outcomes = await Promise.all(tickets.map((t) => send(engine, t, file)));
      expect(outcomes.filter((o) => o.kind === 'handoff')).toHaveLength(1);
    });

    test('a single-shot upload of unknown length owns the session until it ends, then hands off with its total', async () => {
      const id = newId();
      const ticket = await engine.begin(segmentOf(store, id, 0, Number.MAX_SAFE_INTEGER, null), POLICY);
      expect(await refusal(engine.begin(segmentOf(store, id, 0, 1, 2), POLICY))).toMatchObject({ status: 503 });
      const outcome = await send(engine, ticket, Buffer.from('single shot'));
      expect(outcome).toMatchObject({ kind: 'handoff', record: { total: 11, ranges: [{ start: 0, end: 10 }] } });
    });

    test('expiry: an incomplete session goes with its data; a completed one keeps its file and leaves a tombstone, which a new session of the id replaces (D9)', async () => {
      const short = { ...POLICY, sessionTimeoutMs: 400, completedRetentionMs: 400 };
      const partial = newId();
      await upload(engine, store, partial, Buffer.from('abcdef'), 0, 2, short);
      const done = newId();
      const complete = await upload(engine, store, done, Buffer.from('old!'), 0, 3, short);
      if (complete.kind !== 'handoff') throw new Error('expected a hand-off');
      await engine.finishHandoff(complete.record, complete.claim, ANSWER, short);
      await new Promise((r) => setTimeout(r, 500));
      expect(await engine.status(partial)).toBeUndefined();
      expect(await engine.sweep(short)).toBeGreaterThanOrEqual(2);
      expect(existsSync(path.join(store, partial.slice(-1), partial))).toBe(false);
      const oldFile = path.join(store, done.slice(-1), done);
      expect(readFileSync(oldFile, 'utf8')).toBe('old!');
      // The same id later: a fresh, empty file replaces the backend's old one (the module would have overwritten it).
      const fresh = await upload(engine, store, done, Buffer.from('ab'), 0, 1, short);
      expect(fresh.kind).toBe('handoff');
      expect(readFileSync(oldFile, 'utf8')).toBe('ab');
      // A tombstone whose file the backend took away is forgotten by the sweep.
      const gone = newId();
      const g = await upload(engine, store, gone, Buffer.from('xy'), 0, 1, short);
      if (g.kind !== 'handoff') throw new Error('expected a hand-off');
      await engine.finishHandoff(g.record, g.claim, ANSWER, short);
      await new Promise((r) => setTimeout(r, 500));
      await engine.sweep(short);
      const { renameSync } = await import('node:fs');
      renameSync(g.record.dataPath, `${g.record.dataPath}.taken`);
      writeFileSync(g.record.dataPath, 'someone else');
      await engine.sweep(short);
      // The new file at that name is not the retired session's: a new session must not replace it.
      expect(await refusal(engine.begin(segmentOf(store, gone, 0, 1, 2), short))).toMatchObject({ status: 409 });
      expect(readFileSync(g.record.dataPath, 'utf8')).toBe('someone else');
    });

    test('upload_cleanup: a removed file is gone after the answer; the session then simply expires', async () => {
      const id = newId();
      const c = await upload(engine, store, id, Buffer.from('zz'), 0, 1);
      if (c.kind !== 'handoff') throw new Error('expected a hand-off');
      await engine.finishHandoff(c.record, c.claim, { ...ANSWER, status: 500, fileRemoved: true }, POLICY);
      expect(existsSync(c.record.dataPath)).toBe(false);
      expect((await engine.status(id))?.completion?.status).toBe(500);
    });

    // Declared sessions (tus, IETF draft): created before their first byte, appended to at their offset.
    const UNKNOWN = Number.MAX_SAFE_INTEGER;
    const declare = async (on: SessionEngine, id: string, total: number | null, declared: SegmentRequest['declare'] = {}) => {
      const ticket = await on.begin({ ...segmentOf(store, id, 0, -1, total), declare: declared }, POLICY);
      return on.commit(ticket, { total, meta: META }, POLICY);
    };
    const append = async (on: SessionEngine, id: string, file: Buffer, start: number, end: number, total: number | null = null, length = end - start + 1) => {
      const ticket = await on.begin({ ...segmentOf(store, id, start, end, total), append: true }, POLICY);
      if (ticket.file && length > 0) {
        await writeAllAt(ticket.file.handle, [file.subarray(start, start + length)], start);
        await ticket.file.flush();
      }
      return on.commit(ticket, { total, meta: META, end: start + length - 1 }, POLICY);
    };

    test('a declared session exists with no bytes, outlives a failed append, and takes appends only where it continues', async () => {
      const id = newId('d');
      const file = Buffer.from('0123456789');
      const created = await declare(engine, id, 10, { metadata: 'filename Zi5iaW4=' });
      expect(created).toMatchObject({ kind: 'partial', record: { ranges: [], total: 10, declared: true, metadata: 'filename Zi5iaW4=' } });
      expect(existsSync(created.record.dataPath)).toBe(true);
      await engine.abort(await engine.begin({ ...segmentOf(store, id, 0, 3, null), append: true }, POLICY), POLICY);
      expect((await engine.status(id))?.declared).toBe(true);
      expect(await refusal(engine.begin({ ...segmentOf(store, id, 2, 3, null), append: true }, POLICY))).toMatchObject({ status: 409, reason: expect.stringMatching(/offset 2 is not where the upload continues \(0\)/) });
      expect(await refusal(engine.begin({ ...segmentOf(store, newId('u'), 0, 3, null), append: true }, POLICY))).toMatchObject({ status: 404 });
      expect(await refusal(engine.begin({ ...segmentOf(store, id, 0, 10, null), append: true }, POLICY))).toMatchObject({ status: 413 });
      expect((await append(engine, id, file, 0, 5)).record.ranges).toEqual([{ start: 0, end: 5 }]);
      engine = await ut.restart();
      // A body of unknown length: reserved to the end, acknowledged where it really ended.
      const last = await append(ut.another ? await ut.another() : engine, id, file, 6, UNKNOWN, null, 4);
      expect(last.kind).toBe('handoff');
      expect(readFileSync(last.record.dataPath).equals(file)).toBe(true);
    });

    test('a deferred length: unknown until an append (or an append of no bytes) sets it; it cannot be less than what is held', async () => {
      const id = newId('l');
      const file = Buffer.from('abcdefgh');
      expect((await declare(engine, id, null)).record.total).toBeNull();
      const first = await append(engine, id, file, 0, 4);
      expect(first).toMatchObject({ kind: 'partial', record: { total: null, ranges: [{ start: 0, end: 4 }] } });
      engine = await ut.restart();
      expect(await refusal(engine.begin({ ...segmentOf(store, id, 5, 4, 3), append: true }, POLICY))).toMatchObject({ status: 409, reason: expect.stringMatching(/less than the 5 bytes/) });
      expect((await append(engine, id, file, 5, 7)).record.total).toBeNull();
      // No bytes, the length: the file is complete, and this request claims the hand-off.
      const done = await append(engine, id, file, 8, 7, 8);
      expect(done).toMatchObject({ kind: 'handoff', record: { total: 8 } });
      if (done.kind !== 'handoff') return;
      await engine.finishHandoff(done.record, done.claim, ANSWER, POLICY);
      // Every byte in: the last byte again, or no bytes at the end, replays the answer.
      expect((await append(engine, id, file, 7, 7)).kind).toBe('replay');
      expect((await append(engine, id, file, 8, 7)).kind).toBe('replay');
    });

    test('a partial upload of a concatenation is complete without a hand-off; a legacy segment joins a declared session', async () => {
      const part = newId('p');
      const file = Buffer.from('part!');
      await declare(engine, part, 5, { concat: 'partial' });
      const outcome = await append(engine, part, file, 0, 4);
      expect(outcome).toMatchObject({ kind: 'partial', record: { concat: 'partial', ranges: [{ start: 0, end: 4 }] } });
      expect(await engine.status(part)).toMatchObject({ concat: 'partial' });
      const mixed = newId('x');
      await declare(engine, mixed, null);
      await append(engine, mixed, file, 0, 1);
      expect((await upload(engine, store, mixed, file, 2, 4)).kind).toBe('handoff');
    });

    test('termination: an incomplete session goes with its data; a completed one leaves its file; refused while handing off', async () => {
      const id = newId('k');
      const file = Buffer.from('abcdef');
      await declare(engine, id, 6);
      const partial = await append(engine, id, file, 0, 2);
      expect(await engine.terminate(id, POLICY)).toBe(true);
      expect(existsSync(partial.record.dataPath)).toBe(false);
      expect(await engine.status(id)).toBeUndefined();
      expect(await engine.terminate(id, POLICY)).toBe(false);
      await expect(engine.begin({ ...segmentOf(store, id, 3, 5, null), append: true }, POLICY)).rejects.toMatchObject({ status: 404 });
      const done = newId('k');
      const claimed = await upload(engine, store, done, file, 0, 5);
      if (claimed.kind !== 'handoff') throw new Error('expected a hand-off');
      expect(await refusal(engine.terminate(done, POLICY))).toMatchObject({ status: 409 });
      await engine.finishHandoff(claimed.record, claimed.claim, ANSWER, POLICY);
      expect(await engine.terminate(done, POLICY)).toBe(true);
      expect(readFileSync(claimed.record.dataPath).equals(file)).toBe(true);
      expect(await engine.status(done)).toBeUndefined();
    });

    test('model-based: random segments, failures, restarts and instances give the model\'s ranges and one hand-off', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 48 }).chain((total) =>
            fc.tuple(
              fc.constant(total),
              fc.array(fc.record({ a: fc.nat(total - 1), b: fc.nat(total - 1), fail: fc.boolean(), switch: fc.nat(5) }), { minLength: 1, maxLength: 14 }),
            ),
          ),
          async ([total, steps]) => {
            const id = newId('m');
            const file = Buffer.from(Array.from({ length: total }, (_, k) => (k * 7 + total) & 0xff));
            const seen = new Set<number>();
            let handoffs = 0;
            let on = engine;
            for (const step of steps) {
              // Now and then the process restarts, or (shared state) the next segment reaches another instance.
              if (step.switch === 0) on = engine = await ut.restart();
              else if (step.switch === 1 && ut.another) on = on === engine ? await ut.another() : engine;
              const start = Math.min(step.a, step.b);
              const end = Math.max(step.a, step.b);
              const ticket = await on.begin(segmentOf(store, id, start, end, total), POLICY);
              if (step.fail) {
                await on.abort(ticket, POLICY);
                continue;
              }
              const wasComplete = seen.size === total;
              const outcome = await send(on, ticket, file);
              for (let b = start; b <= end; b++) seen.add(b);
              expect(outcome.kind).toBe(wasComplete ? 'replay' : seen.size === total ? 'handoff' : 'partial');
              if (outcome.kind === 'handoff') {
                handoffs++;
                await on.finishHandoff(outcome.record, outcome.claim, ANSWER, POLICY);
              }
              const covered = outcome.record.ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
              expect(covered).toBe(seen.size);
            }
            expect(handoffs).toBe(seen.size === total ? 1 : 0);
            if (seen.size === total) expect(readFileSync(path.join(store, id.slice(-1), id)).equals(file)).toBe(true);
            if (seen.size === 0) {
              expect(existsSync(path.join(store, id.slice(-1), id))).toBe(false);
              expect(await engine.status(id)).toBeUndefined();
            }
          },
        ),
        { numRuns: 60 },
      );
      // Nothing but data files of sessions in the store.
      expect(filesUnder(store).every((f) => /\/[a-z0-9]\/[A-Za-z0-9_-]+$/.test(f))).toBe(true);
    });
  });
}
