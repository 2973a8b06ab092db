/**
 * The contract every ProgressStore (an `upload_progress` zone) must pass, in process and in Redis
 * (the habit of test/state/contracts.ts: one suite, several backends).
 */
import { snapshotOf, type ProgressStore } from '../../src/progress/types';
import { progressView } from '../../src/protocol/upload-progress';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface ProgressContractOptions {
  /** A second store on the same backing state (another instance), when the backend is shared. */
  peer?: (store: ProgressStore) => Promise<ProgressStore>;
}

export function progressStoreContract(name: string, create: () => Promise<ProgressStore>, options: ProgressContractOptions = {}): void {
  describe(`ProgressStore contract: ${name}`, () => {
    let store: ProgressStore;
    let ids = 0;
    let id: string;
    beforeEach(async () => {
      store = await create();
      id = `id-${++ids}-${Math.random().toString(36).slice(2)}`;
    });
    afterEach(async () => {
      await store.close();
    });

    const view = async (of = id) => {
      const entry = await store.get(of);
      return { entry, snapshot: entry && snapshotOf(entry), view: progressView(entry && snapshotOf(entry)) };
    };

    test('an unknown id has no entry (starting)', async () => {
      expect(await store.get(id)).toBeUndefined();
      expect((await view()).view.state).toBe('starting');
    });

    test('a request: registered at 0 of its size, its bytes as reported, finished with its status', async () => {
      expect(await store.begin(id, { kind: 'request', size: 3000 }, 'r1')).toBe('ok');
      expect((await view()).view).toEqual({ state: 'uploading', length: 3000, received: 0, remaining: 3000, status: 0 });
      await store.report(id, 'r1', { start: 0, received: 2000 });
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 2000, length: 3000 });
      await store.report(id, 'r1', { start: 0, received: 3000 });
      await store.end(id, 'r1', { finish: 200, ttlMs: 60_000 });
      const { entry, view: after } = await view();
      expect(after).toEqual({ state: 'done', length: 3000, received: 3000, remaining: 0, status: 0 });
      expect(entry).toMatchObject({ id, kind: 'request', finished: true, received: 3000, inFlight: {} });
    });

    test('final statuses: 3xx stored and done (P7), ≥ 400 error', async () => {
      await store.begin(id, { kind: 'request', size: 10 }, 'r');
      await store.end(id, 'r', { finish: 302, ttlMs: 60_000 });
      expect((await view()).view).toMatchObject({ state: 'done', status: 302 });
      const other = `${id}-b`;
      await store.begin(other, { kind: 'request', size: 10 }, 'r');
      await store.end(other, 'r', { finish: 502, ttlMs: 60_000 });
      expect((await view(other)).view).toMatchObject({ state: 'error', status: 502 });
    });

    test('a chunked body: size −1 while streaming, the real size once it ended (P6)', async () => {
      await store.begin(id, { kind: 'request', size: -1 }, 'r');
      await store.report(id, 'r', { start: 0, received: 8193 });
      expect((await view()).view).toMatchObject({ state: 'uploading', length: -1, received: 8193 });
      await store.end(id, 'r', { finish: 200, size: 9000, ttlMs: 60_000 });
      expect((await view()).view).toMatchObject({ state: 'done', length: 9000 });
    });

    test('P2: an id in use (running or finished) is a duplicate for another upload; the entry is not poisoned', async () => {
      await store.begin(id, { kind: 'request', size: 10 }, 'a');
      expect(await store.begin(id, { kind: 'request', size: 10 }, 'b')).toBe('duplicate');
      expect(await store.begin(id, { kind: 'session', session: 's', total: 10 }, 'c')).toBe('duplicate');
      await store.end(id, 'a', { finish: 200, ttlMs: 60_000 });
      expect(await store.begin(id, { kind: 'request', size: 10 }, 'd')).toBe('duplicate');
      expect((await view()).view.state).toBe('done');
    });

    test('a session: every segment sent with the id adds to one entry of the whole file', async () => {
      expect(await store.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'a')).toBe('ok');
      expect(await store.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'b')).toBe('ok');
      expect(await store.begin(id, { kind: 'session', session: 'other', total: 1000 }, 'c')).toBe('duplicate');
      await store.acknowledge(id, [{ start: 0, end: 99 }]);
      await store.report(id, 'a', { start: 100, received: 50 });
      await store.report(id, 'b', { start: 500, received: 100 });
      expect((await view()).snapshot).toEqual({ size: 1000, received: 250, finished: false, status: 0, ranges: [{ start: 0, end: 149 }, { start: 500, end: 599 }] });
      // Segment a is acknowledged; segment b fails (its bytes drop out), the session goes on.
      await store.acknowledge(id, [{ start: 0, end: 199 }]);
      await store.end(id, 'a', { finish: null, ttlMs: 60_000 });
      await store.end(id, 'b', { finish: null, ttlMs: 60_000 });
      expect((await view()).snapshot).toMatchObject({ received: 200, finished: false, ranges: [{ start: 0, end: 199 }] });
      expect((await view()).view.state).toBe('uploading');
      // The last segment hands off: done with the backend's status.
      await store.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'c');
      await store.acknowledge(id, [{ start: 0, end: 999 }]);
      await store.end(id, 'c', { finish: 200, ttlMs: 60_000 });
      expect((await view()).view).toEqual({ state: 'done', length: 1000, received: 1000, remaining: 0, status: 0 });
    });

    test('acknowledged ranges only grow', async () => {
      await store.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await store.acknowledge(id, [{ start: 0, end: 49 }]);
      await store.acknowledge(id, [{ start: 0, end: 9 }]);
      expect((await view()).snapshot!.ranges).toEqual([{ start: 0, end: 49 }]);
    });

    test('a finished session reopens when the same session sends again; another total restarts the count', async () => {
      await store.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await store.acknowledge(id, [{ start: 0, end: 49 }]);
      await store.end(id, 'a', { finish: 409, ttlMs: 60_000 });
      expect((await view()).view.state).toBe('error');
      expect(await store.begin(id, { kind: 'session', session: 's', total: 100 }, 'b')).toBe('ok');
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 50, status: 0 });
      await store.end(id, 'b', { finish: null, ttlMs: 60_000 });
      expect(await store.begin(id, { kind: 'session', session: 's', total: 70 }, 'c')).toBe('ok');
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 0, length: 70 });
    });

    test('an error before registering: an error-only entry when the id has none (§4.4), never on an existing one', async () => {
      await store.recordError(id, 413, 60_000);
      expect((await view()).view).toEqual({ state: 'error', length: 0, received: 0, remaining: 0, status: 413 });
      const busy = `${id}-busy`;
      await store.begin(busy, { kind: 'request', size: 10 }, 'a');
      await store.recordError(busy, 413, 60_000);
      expect((await view(busy)).view.state).toBe('uploading');
    });

    test('a finished entry goes after its timeout; one with a request in flight stays', async () => {
      await store.begin(id, { kind: 'request', size: 10 }, 'a');
      await store.end(id, 'a', { finish: 200, ttlMs: 150 });
      const busy = `${id}-busy`;
      await store.begin(busy, { kind: 'session', session: 's', total: 10 }, 'a');
      await store.begin(busy, { kind: 'session', session: 's', total: 10 }, 'b');
      await store.end(busy, 'a', { finish: null, ttlMs: 150 });
      expect(await store.get(id)).toBeDefined();
      await sleep(400);
      expect(await store.get(id)).toBeUndefined();
      expect(await store.get(busy)).toBeDefined();
      await store.end(busy, 'b', { finish: null, ttlMs: 150 });
      await sleep(400);
      expect(await store.get(busy)).toBeUndefined();
    });

    test('watch: told about changes; unwatching leaves no listener', async () => {
      let calls = 0;
      const stop = store.watch(id, () => calls++);
      expect(store.watchers()).toBe(1);
      await store.begin(id, { kind: 'request', size: 10 }, 'a');
      await waitFor(() => calls > 0, 2000, 'a change notification');
      const before = calls;
      await store.report(id, 'a', { start: 0, received: 5 });
      await waitFor(() => calls > before, 2000, 'a second notification');
      stop();
      stop();
      expect(store.watchers()).toBe(0);
      const after = calls;
      await store.end(id, 'a', { finish: 200, ttlMs: 60_000 });
      await sleep(300);
      expect(calls).toBe(after);
    });

    test('entries are copies', async () => {
      await store.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await store.acknowledge(id, [{ start: 0, end: 9 }]);
      const entry = (await store.get(id))!;
      entry.acknowledged.push({ start: 50, end: 60 });
      expect((await store.get(id))!.acknowledged).toEqual([{ start: 0, end: 9 }]);
    });

    if (options.peer) {
      test('another instance sees the bytes and is told about them', async () => {
        const other = await options.peer!(store);
        try {
          let calls = 0;
          const stop = other.watch(id, () => calls++);
          await store.begin(id, { kind: 'session', session: 's', total: 1000 }, 'a');
          await store.report(id, 'a', { start: 0, received: 400 });
          await waitFor(async () => (await other.get(id)) !== undefined && calls > 0, 2000, 'the other instance');
          expect(snapshotOf((await other.get(id))!).received).toBe(400);
          // The other instance's segment joins the same entry.
          expect(await other.begin(id, { kind: 'session', session: 's', total: 1000 }, 'b')).toBe('ok');
          await other.report(id, 'b', { start: 600, received: 400 });
          expect(snapshotOf((await store.get(id))!).received).toBe(800);
          stop();
          expect(other.watchers()).toBe(0);
        } finally {
          await other.close();
        }
      });
    }
  });
}
