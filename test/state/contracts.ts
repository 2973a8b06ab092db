/**
 * Contract suites every SessionStore and Locker implementation must pass (the @tus/server habit:
 * one suite, several backends): files, process memory and Redis call the same functions.
 */
import { MemoryLocker } from '../../src/state/memory-locker';
import { LeaseLostError, type Locker, type SessionRecord, type SessionStore } from '../../src/state/types';

export function sampleRecord(id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id,
    total: 12,
    ranges: [{ start: 0, end: 4 }],
    dataPath: `/store/1/${id}`,
    fileName: 'big.TXT',
    contentType: 'application/octet-stream',
    fieldName: '',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 60_000,
    ...overrides,
  };
}

export interface StoreContractOptions {
  destroy?: (store: SessionStore) => Promise<void>;
  /** The locker whose leases guard this store's writes (default: an in-process one). */
  locker?: () => Promise<Locker>;
}

export function sessionStoreContract(name: string, create: () => Promise<SessionStore>, options: StoreContractOptions = {}): void {
  const destroy = options.destroy ?? ((s: SessionStore) => s.close());
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore;
    let locker: Locker;
    beforeEach(async () => {
      store = await create();
      locker = options.locker ? await options.locker() : new MemoryLocker();
    });
    afterEach(async () => {
      await locker.close();
      await destroy(store);
    });

    test('get of an unknown id is undefined', async () => {
      expect(await store.get('nope')).toBeUndefined();
    });

    test('put then get returns an equal record', async () => {
      const record = sampleRecord('a1', {
        completion: { status: 200, statusMessage: 'X', headers: [['X-A', '1'], ['X-A', '2']], bodyBase64: 'YmFja2VuZA==', completedAt: 5, fileRemoved: false },
        handoff: { owner: 'me', startedAt: 3 },
      });
      await store.put(record);
      expect(await store.get('a1')).toEqual(record);
    });

    test('put replaces the whole record', async () => {
      await store.put(sampleRecord('a2', { fileName: 'first', handoff: { owner: 'x', startedAt: 1 } }));
      const second = sampleRecord('a2', { fileName: 'second', ranges: [{ start: 0, end: 11 }] });
      await store.put(second);
      expect(await store.get('a2')).toEqual(second);
    });

    test('records are copies: mutating a returned record does not change the store', async () => {
      await store.put(sampleRecord('a3'));
      const got = (await store.get('a3'))!;
      got.ranges.push({ start: 9, end: 11 });
      expect((await store.get('a3'))!.ranges).toEqual([{ start: 0, end: 4 }]);
    });

    test('delete removes the record and is idempotent', async () => {
      await store.put(sampleRecord('a4'));
      await store.delete('a4');
      await store.delete('a4');
      expect(await store.get('a4')).toBeUndefined();
    });

    test('ids lists exactly the stored ids', async () => {
      for (const id of ['x-1', 'y_2', 'Z3', 'z3']) await store.put(sampleRecord(id));
      await store.delete('y_2');
      const ids: string[] = [];
      for await (const id of store.ids()) ids.push(id);
      expect(ids.sort()).toEqual(['Z3', 'x-1', 'z3'].sort());
    });

    test('ids differing only in case are different sessions', async () => {
      await store.put(sampleRecord('abc', { total: 1 }));
      await store.put(sampleRecord('ABC', { total: 2 }));
      expect((await store.get('abc'))!.total).toBe(1);
      expect((await store.get('ABC'))!.total).toBe(2);
    });

    test('concurrent puts of different ids do not interfere', async () => {
      const records = Array.from({ length: 50 }, (_, i) => sampleRecord(`c${i}`, { total: i + 1 }));
      await Promise.all(records.map((r) => store.put(r)));
      for (const r of records) expect((await store.get(r.id))!.total).toBe(r.total);
    });

    test('a 200-character id works', async () => {
      const id = 'a'.repeat(199) + 'z';
      await store.put(sampleRecord(id));
      expect((await store.get(id))!.id).toBe(id);
    });

    test('update creates, changes and returns its result; without a record it writes nothing', async () => {
      const created = await store.update('u1', (current) => {
        expect(current).toBeUndefined();
        return { record: sampleRecord('u1', { total: 7 }), result: 'created' };
      });
      expect(created).toBe('created');
      expect((await store.get('u1'))!.total).toBe(7);
      const seen = await store.update('u1', (current) => ({ result: current!.total }));
      expect(seen).toBe(7);
      await store.update('u1', (current) => ({ record: { ...current!, ranges: [{ start: 0, end: 11 }] }, result: null }));
      expect((await store.get('u1'))!.ranges).toEqual([{ start: 0, end: 11 }]);
      expect(await store.update('none', () => ({ result: 'kept' }))).toBe('kept');
      expect(await store.get('none')).toBeUndefined();
    });

    test('update gets a copy: changing it without returning it stores nothing', async () => {
      await store.put(sampleRecord('u2'));
      await store.update('u2', (current) => {
        current!.ranges.push({ start: 9, end: 11 });
        return { result: undefined };
      });
      expect((await store.get('u2'))!.ranges).toEqual([{ start: 0, end: 4 }]);
    });

    test('an error thrown by decide aborts the update and is rethrown', async () => {
      await store.put(sampleRecord('u3'));
      await expect(store.update('u3', () => {
        throw new Error('refused');
      })).rejects.toThrow('refused');
      expect((await store.get('u3'))!.total).toBe(12);
    });

    test('concurrent updates of one record lose nothing (atomic read-modify-write)', async () => {
      await store.put(sampleRecord('u4', { ranges: [] }));
      // Each update adds one distinct single-byte range: a lost update would lose a range.
      await Promise.all(Array.from({ length: 30 }, (_, i) =>
        store.update('u4', (current) => ({ record: { ...current!, ranges: [...current!.ranges, { start: i * 2, end: i * 2 }] }, result: i })),
      ));
      const ranges = (await store.get('u4'))!.ranges;
      expect(ranges).toHaveLength(30);
      expect(new Set(ranges.map((r) => r.start)).size).toBe(30);
    });

    test('concurrent claims of one record: exactly one wins (the hand-off claim, D7)', async () => {
      await store.put(sampleRecord('u5'));
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        store.update('u5', (current) => {
          if (current!.handoff) return { result: false };
          return { record: { ...current!, handoff: { owner: `o${i}`, startedAt: i } }, result: true };
        }),
      ));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect((await store.get('u5'))!.handoff).toEqual({ owner: `o${winner}`, startedAt: winner });
    });

    test('writes guarded by a held lease go through', async () => {
      const lease = await locker.lock('g1');
      await store.put(sampleRecord('g1'), [lease]);
      await store.update('g1', (current) => ({ record: { ...current!, total: 99 }, result: null }), [lease]);
      expect((await store.get('g1'))!.total).toBe(99);
      await store.delete('g1', [lease]);
      expect(await store.get('g1')).toBeUndefined();
      await lease.release();
    });

    test('writes guarded by a released lease are refused and write nothing (fencing)', async () => {
      await store.put(sampleRecord('g2'));
      const lease = await locker.lock('g2');
      await lease.release();
      expect(lease.held).toBe(false);
      await expect(store.put(sampleRecord('g2', { total: 1 }), [lease])).rejects.toBeInstanceOf(LeaseLostError);
      await expect(store.update('g2', (current) => ({ record: { ...current!, total: 2 }, result: null }), [lease])).rejects.toBeInstanceOf(LeaseLostError);
      await expect(store.delete('g2', [lease])).rejects.toBeInstanceOf(LeaseLostError);
      expect((await store.get('g2'))!.total).toBe(12);
    });
  });
}

export function lockerContract(name: string, create: () => Promise<Locker>): void {
  describe(`Locker contract: ${name}`, () => {
    let locker: Locker;
    beforeEach(async () => {
      locker = await create();
    });
    afterEach(async () => {
      await locker.close();
    });

    test('lock is exclusive per key and grants in order', async () => {
      const events: string[] = [];
      const first = await locker.lock('k');
      const second = locker.lock('k').then((lease) => {
        events.push('second');
        return lease;
      });
      const third = locker.lock('k').then((lease) => {
        events.push('third');
        return lease;
      });
      await new Promise((r) => setTimeout(r, 30));
      expect(events).toEqual([]);
      events.push('release-first');
      await first.release();
      const l2 = await second;
      await new Promise((r) => setTimeout(r, 30));
      expect(events).toEqual(['release-first', 'second']);
      await l2.release();
      await (await third).release();
      expect(events).toEqual(['release-first', 'second', 'third']);
    });

    test('different keys do not block each other', async () => {
      const a = await locker.lock('a');
      const b = await Promise.race([locker.lock('b'), new Promise<null>((r) => setTimeout(() => r(null), 500))]);
      expect(b).not.toBeNull();
      await a.release();
      await b!.release();
    });

    test('read-modify-write under the lock loses no update', async () => {
      let counter = 0;
      await Promise.all(
        Array.from({ length: 40 }, async () => {
          const lease = await locker.lock('rmw');
          const seen = counter;
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          counter = seen + 1;
          await lease.release();
        }),
      );
      expect(counter).toBe(40);
    });

    test('releasing twice is harmless', async () => {
      const lease = await locker.lock('twice');
      await lease.release();
      await lease.release();
      const again = await locker.lock('twice');
      await again.release();
    });

    test('reserve refuses a range overlapping one in flight, on the same key only', async () => {
      const a = await locker.reserve('s', { start: 0, end: 99 });
      expect(a).not.toBeNull();
      expect(await locker.reserve('s', { start: 99, end: 150 })).toBeNull();
      expect(await locker.reserve('s', { start: 50, end: 60 })).toBeNull();
      const b = await locker.reserve('s', { start: 100, end: 199 });
      expect(b).not.toBeNull();
      const other = await locker.reserve('t', { start: 0, end: 99 });
      expect(other).not.toBeNull();
      await a!.release();
      const c = await locker.reserve('s', { start: 0, end: 99 });
      expect(c).not.toBeNull();
      await Promise.all([b!.release(), c!.release(), other!.release()]);
    });

    test('parallel reservations of one range: exactly one wins', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, () => locker.reserve('p', { start: 10, end: 20 })));
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      await results.find((r) => r !== null)!.release();
    });

    test('a lease is held until released; release is not a loss', async () => {
      const lease = await locker.lock('h');
      const reservation = (await locker.reserve('h', { start: 0, end: 9 }))!;
      expect(lease.held).toBe(true);
      expect(reservation.held).toBe(true);
      expect(lease.lost.aborted).toBe(false);
      await lease.release();
      await reservation.release();
      expect(lease.held).toBe(false);
      expect(reservation.held).toBe(false);
      expect(lease.lost.aborted).toBe(false);
      expect(reservation.lost.aborted).toBe(false);
    });

    test('adjacent ranges do not overlap; a range inside another does', async () => {
      const a = (await locker.reserve('adj', { start: 0, end: 9 }))!;
      const b = await locker.reserve('adj', { start: 10, end: 19 });
      expect(b).not.toBeNull();
      expect(await locker.reserve('adj', { start: 2, end: 3 })).toBeNull();
      expect(await locker.reserve('adj', { start: 0, end: 100 })).toBeNull();
      await Promise.all([a.release(), b!.release()]);
    });
  });
}
