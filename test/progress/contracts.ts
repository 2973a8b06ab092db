/**
 * The contract every ProgressZone (an `upload_progress` zone) must pass, in process and in Redis
 * (the habit of test/state/contracts.ts: one suite, several backends).
 */
import { snapshotOf, type ProgressZone } from '../../src/progress/types';
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
  /** A second zone on the same backing state (another instance), when the backend is shared. */
  peer?: (zone: ProgressZone) => Promise<ProgressZone>;
}

export function progressStoreContract(name: string, create: () => Promise<ProgressZone>, options: ProgressContractOptions = {}): void {
  describe(`ProgressZone contract: ${name}`, () => {
    let zone: ProgressZone;
    let ids = 0;
    let id: string;
    beforeEach(async () => {
      zone = await create();
      id = `id-${++ids}-${Math.random().toString(36).slice(2)}`;
    });
    afterEach(async () => {
      await zone.close();
    });

    const view = async (of = id) => {
      const entry = await zone.get(of);
      return { entry, snapshot: entry && snapshotOf(entry), view: progressView(entry && snapshotOf(entry)) };
    };

    test('an unknown id has no entry (starting)', async () => {
      expect(await zone.get(id)).toBeUndefined();
      expect((await view()).view.state).toBe('starting');
    });

    test('a request: registered at 0 of its size, its bytes as reported, finished with its status', async () => {
      expect(await zone.begin(id, { kind: 'request', size: 3000 }, 'r1')).toBe('ok');
      expect((await view()).view).toEqual({ state: 'uploading', length: 3000, received: 0, remaining: 3000, status: 0 });
      await zone.report(id, 'r1', { start: 0, received: 2000 });
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 2000, length: 3000 });
      await zone.report(id, 'r1', { start: 0, received: 3000 });
      await zone.end(id, 'r1', { finish: 200, ttlMs: 60_000 });
      const { entry, view: after } = await view();
      expect(after).toEqual({ state: 'done', length: 3000, received: 3000, remaining: 0, status: 0 });
      expect(entry).toMatchObject({ id, kind: 'request', finished: true, received: 3000, inFlight: {} });
    });

    test('final statuses: 3xx stored and done (P7), ≥ 400 error', async () => {
      await zone.begin(id, { kind: 'request', size: 10 }, 'r');
      await zone.end(id, 'r', { finish: 302, ttlMs: 60_000 });
      expect((await view()).view).toMatchObject({ state: 'done', status: 302 });
      const other = `${id}-b`;
      await zone.begin(other, { kind: 'request', size: 10 }, 'r');
      await zone.end(other, 'r', { finish: 502, ttlMs: 60_000 });
      expect((await view(other)).view).toMatchObject({ state: 'error', status: 502 });
    });

    test('a chunked body: size −1 while streaming, the real size once it ended (P6)', async () => {
      await zone.begin(id, { kind: 'request', size: -1 }, 'r');
      await zone.report(id, 'r', { start: 0, received: 8193 });
      expect((await view()).view).toMatchObject({ state: 'uploading', length: -1, received: 8193 });
      await zone.end(id, 'r', { finish: 200, size: 9000, ttlMs: 60_000 });
      expect((await view()).view).toMatchObject({ state: 'done', length: 9000 });
    });

    test('P2: an id in use (running or finished) is a duplicate for another upload; the entry is not poisoned', async () => {
      await zone.begin(id, { kind: 'request', size: 10 }, 'a');
      expect(await zone.begin(id, { kind: 'request', size: 10 }, 'b')).toBe('duplicate');
      expect(await zone.begin(id, { kind: 'session', session: 's', total: 10 }, 'c')).toBe('duplicate');
      await zone.end(id, 'a', { finish: 200, ttlMs: 60_000 });
      expect(await zone.begin(id, { kind: 'request', size: 10 }, 'd')).toBe('duplicate');
      expect((await view()).view.state).toBe('done');
    });

    test('a session: every segment sent with the id adds to one entry of the whole file', async () => {
      expect(await zone.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'a')).toBe('ok');
      expect(await zone.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'b')).toBe('ok');
      expect(await zone.begin(id, { kind: 'session', session: 'other', total: 1000 }, 'c')).toBe('duplicate');
      await zone.acknowledge(id, [{ start: 0, end: 99 }]);
      await zone.report(id, 'a', { start: 100, received: 50 });
      await zone.report(id, 'b', { start: 500, received: 100 });
      expect((await view()).snapshot).toEqual({ size: 1000, received: 250, finished: false, status: 0, ranges: [{ start: 0, end: 149 }, { start: 500, end: 599 }] });
      // Segment a is acknowledged; segment b fails (its bytes drop out), the session goes on.
      await zone.acknowledge(id, [{ start: 0, end: 199 }]);
      await zone.end(id, 'a', { finish: null, ttlMs: 60_000 });
      await zone.end(id, 'b', { finish: null, ttlMs: 60_000 });
      expect((await view()).snapshot).toMatchObject({ received: 200, finished: false, ranges: [{ start: 0, end: 199 }] });
      expect((await view()).view.state).toBe('uploading');
      // The last segment hands off: done with the backend's status.
      await zone.begin(id, { kind: 'session', session: 's1', total: 1000 }, 'c');
      await zone.acknowledge(id, [{ start: 0, end: 999 }]);
      await zone.end(id, 'c', { finish: 200, ttlMs: 60_000 });
      expect((await view()).view).toEqual({ state: 'done', length: 1000, received: 1000, remaining: 0, status: 0 });
    });

    test('acknowledged ranges only grow', async () => {
      await zone.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await zone.acknowledge(id, [{ start: 0, end: 49 }]);
      await zone.acknowledge(id, [{ start: 0, end: 9 }]);
      expect((await view()).snapshot!.ranges).toEqual([{ start: 0, end: 49 }]);
    });

    test('a finished session reopens when the same session sends again; another total restarts the count', async () => {
      await zone.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await zone.acknowledge(id, [{ start: 0, end: 49 }]);
      await zone.end(id, 'a', { finish: 409, ttlMs: 60_000 });
      expect((await view()).view.state).toBe('error');
      expect(await zone.begin(id, { kind: 'session', session: 's', total: 100 }, 'b')).toBe('ok');
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 50, status: 0 });
      await zone.end(id, 'b', { finish: null, ttlMs: 60_000 });
      expect(await zone.begin(id, { kind: 'session', session: 's', total: 70 }, 'c')).toBe('ok');
      expect((await view()).view).toMatchObject({ state: 'uploading', received: 0, length: 70 });
    });

    test('an error before registering: an error-only entry when the id has none (§4.4), never on an existing one', async () => {
      await zone.recordError(id, 413, 60_000);
      expect((await view()).view).toEqual({ state: 'error', length: 0, received: 0, remaining: 0, status: 413 });
      const busy = `${id}-busy`;
      await zone.begin(busy, { kind: 'request', size: 10 }, 'a');
      await zone.recordError(busy, 413, 60_000);
      expect((await view(busy)).view.state).toBe('uploading');
    });

    test('a finished entry goes after its timeout; one with a request in flight stays', async () => {
      await zone.begin(id, { kind: 'request', size: 10 }, 'a');
      await zone.end(id, 'a', { finish: 200, ttlMs: 150 });
      const busy = `${id}-busy`;
      await zone.begin(busy, { kind: 'session', session: 's', total: 10 }, 'a');
      await zone.begin(busy, { kind: 'session', session: 's', total: 10 }, 'b');
      await zone.end(busy, 'a', { finish: null, ttlMs: 150 });
      expect(await zone.get(id)).toBeDefined();
      await sleep(400);
      expect(await zone.get(id)).toBeUndefined();
      expect(await zone.get(busy)).toBeDefined();
      await zone.end(busy, 'b', { finish: null, ttlMs: 150 });
      await sleep(400);
      expect(await zone.get(busy)).toBeUndefined();
    });

    test('watch: told about changes; unwatching leaves no listener', async () => {
      let calls = 0;
      const stop = zone.watch(id, () => calls++);
      expect(zone.watchers()).toBe(1);
      await zone.begin(id, { kind: 'request', size: 10 }, 'a');
      await waitFor(() => calls > 0, 2000, 'a change notification');
      const before = calls;
      await zone.report(id, 'a', { start: 0, received: 5 });
      await waitFor(() => calls > before, 2000, 'a second notification');
      stop();
      stop();
      expect(zone.watchers()).toBe(0);
      const after = calls;
      await zone.end(id, 'a', { finish: 200, ttlMs: 60_000 });
      await sleep(300);
      expect(calls).toBe(after);
    });

    test('entries are copies', async () => {
      await zone.begin(id, { kind: 'session', session: 's', total: 100 }, 'a');
      await zone.acknowledge(id, [{ start: 0, end: 9 }]);
      const entry = (await zone.get(id))!;
      entry.acknowledged.push({ start: 50, end: 60 });
      expect((await zone.get(id))!.acknowledged).toEqual([{ start: 0, end: 9 }]);
    });

    if (options.peer) {
      test('another instance sees the bytes and is told about them', async () => {
        const other = await options.peer!(zone);
        try {
          let calls = 0;
          const stop = other.watch(id, () => calls++);
          await zone.begin(id, { kind: 'session', session: 's', total: 1000 }, 'a');
          await zone.report(id, 'a', { start: 0, received: 400 });
          await waitFor(async () => (await other.get(id)) !== undefined && calls > 0, 2000, 'the other instance');
          expect(snapshotOf((await other.get(id))!).received).toBe(400);
          // The other instance's segment joins the same entry.
          expect(await other.begin(id, { kind: 'session', session: 's', total: 1000 }, 'b')).toBe('ok');
          await other.report(id, 'b', { start: 600, received: 400 });
          expect(snapshotOf((await zone.get(id))!).received).toBe(800);
          stop();
          expect(other.watchers()).toBe(0);
        } finally {
          await other.close();
        }
      });
    }
  });
}
