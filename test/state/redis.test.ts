/**
 * The Redis session store and locker (`upload_state_redis`) against a real redis-server: the same
 * contract suites as the file and in-process implementations, then what only shared state has —
 * several instances (clients) on one Redis, leases that expire when an instance dies, and fencing
 * of writes made on behalf of a lost lease.
 */
import type Redis from 'ioredis';
import { RedisLocker, RedisSessionStore, type RedisLockerOptions } from '../../src/state/redis-state';
import { LeaseLostError, type Lease } from '../../src/state/types';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { lockerContract, sampleRecord, sessionStoreContract } from './contracts';

let redis: RedisProcess;
const clients: Redis[] = [];
let prefixes = 0;

function client(): Redis {
  const c = redis.client();
  clients.push(c);
  return c;
}

/** A fresh key prefix: every test sees an empty Redis. */
function freshPrefix(): string {
  return `t${++prefixes}:`;
}

beforeAll(async () => {
  // Throws (failing every test) when redis-server is not installed: never skipped.
  redis = await startRedis();
}, 20_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => (c.status === 'end' ? undefined : c.quit().catch(() => c.disconnect()))));
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let storePrefix = '';
sessionStoreContract(
  'RedisSessionStore',
  async () => {
    storePrefix = freshPrefix();
    return new RedisSessionStore(client(), storePrefix);
  },
  { locker: async () => new RedisLocker(client(), { prefix: storePrefix }) },
);
lockerContract('RedisLocker', async () => new RedisLocker(client(), { prefix: freshPrefix() }));

/** Two gateway instances: each its own Redis connection, the same Redis and prefix. */
function twoInstances(options: RedisLockerOptions = {}) {
  const prefix = freshPrefix();
  const [ca, cb] = [client(), client()];
  return {
    prefix,
    a: { client: ca, store: new RedisSessionStore(ca, prefix), locker: new RedisLocker(ca, { ...options, prefix }) },
    b: { client: cb, store: new RedisSessionStore(cb, prefix), locker: new RedisLocker(cb, { ...options, prefix }) },
  };
}

describe('Redis state shared by two instances', () => {
  test('the lock is exclusive across instances: read-modify-write from both loses nothing', async () => {
    const { a, b } = twoInstances();
    await a.store.put(sampleRecord('shared', { total: 0 }));
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const side = i % 2 ? a : b;
        const lease = await side.locker.lock('shared');
        try {
          // A plain get + put (not update): only the lock makes it safe.
          const record = (await side.store.get('shared'))!;
          await sleep(Math.random() * 3);
          await side.store.put({ ...record, total: record.total + 1 }, [lease]);
        } finally {
          await lease.release();
        }
      }),
    );
    expect((await a.store.get('shared'))!.total).toBe(30);
  });

  test('update is atomic across instances (no lock held)', async () => {
    const { a, b } = twoInstances();
    await a.store.put(sampleRecord('atomic', { total: 0 }));
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).store.update('atomic', (r) => ({ record: { ...r!, total: r!.total + 1 }, result: null }))));
    expect((await b.store.get('atomic'))!.total).toBe(40);
  });

  test('reservations conflict across instances (D4: 503 for an overlapping segment in flight anywhere)', async () => {
    const { a, b } = twoInstances();
    const first = await a.locker.reserve('seg', { start: 0, end: 99 });
    expect(first).not.toBeNull();
    expect(await b.locker.reserve('seg', { start: 50, end: 149 })).toBeNull();
    const second = await b.locker.reserve('seg', { start: 100, end: 199 });
    expect(second).not.toBeNull();
    await first!.release();
    const third = await b.locker.reserve('seg', { start: 0, end: 99 });
    expect(third).not.toBeNull();
    await Promise.all([second!.release(), third!.release()]);
  });

  test('a held lease is renewed past its time-to-live; a waiting instance gets it on release', async () => {
    const { a, b } = twoInstances({ lockTtlMs: 300, acquireTimeoutMs: 5000 });
    const lease = await a.locker.lock('renewed');
    await sleep(1000);
    expect(lease.held).toBe(true);
    let granted = false;
    const waiting = b.locker.lock('renewed').then((l) => {
      granted = true;
      return l;
    });
    await sleep(400);
    expect(granted).toBe(false);
    await lease.release();
    await (await waiting).release();
    expect(granted).toBe(true);
  });

  test('a crashed instance does not hold a session forever: its lock and reservations expire', async () => {
    const { a, b } = twoInstances({ lockTtlMs: 400, reserveTtlMs: 400, acquireTimeoutMs: 5000 });
    const lock = await a.locker.lock('crash');
    const reservation = await a.locker.reserve('crash', { start: 0, end: 9 });
    expect(reservation).not.toBeNull();
    // The instance dies: its connection goes, nothing renews or releases.
    a.client.disconnect();
    expect(await b.locker.reserve('crash', { start: 0, end: 9 })).toBeNull();
    const started = Date.now();
    const taken = await b.locker.lock('crash');
    expect(Date.now() - started).toBeLessThan(3000);
    await sleep(200);
    const again = await b.locker.reserve('crash', { start: 0, end: 9 });
    expect(again).not.toBeNull();
    // The dead instance's leases notice they are gone (renewal keeps failing past the TTL).
    await sleep(600);
    expect(lock.held).toBe(false);
    expect(lock.lost.aborted).toBe(true);
    expect(reservation!.held).toBe(false);
    await Promise.all([taken.release(), again!.release()]);
  });

  test('fencing: a write on behalf of a lease that another instance now holds is refused atomically', async () => {
    const { prefix, a, b } = twoInstances({ lockTtlMs: 60_000 });
    await a.store.put(sampleRecord('fenced', { total: 1 }));
    const stale = await a.locker.lock('fenced');
    // The lease expires behind A's back (a long pause: no renewal ran) and B takes the lock.
    await client().del(`${prefix}l:fenced`);
    const current = await b.locker.lock('fenced');
    expect(stale.held).toBe(true); // A does not know yet: only the store's check stops it.
    await expect(a.store.put(sampleRecord('fenced', { total: 2 }), [stale])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.store.update('fenced', (r) => ({ record: { ...r!, total: 3 }, result: null }), [stale])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.store.delete('fenced', [stale])).rejects.toBeInstanceOf(LeaseLostError);
    expect((await b.store.get('fenced'))!.total).toBe(1);
    await b.store.put(sampleRecord('fenced', { total: 4 }), [current]);
    expect((await a.store.get('fenced'))!.total).toBe(4);
    await current.release();
    // Releasing the stale lease does not free B's later lock.
    const later = await b.locker.lock('fenced');
    await stale.release();
    await expect(b.store.put(sampleRecord('fenced', { total: 5 }), [later])).resolves.toBeUndefined();
    await later.release();
  });

  test('a lost reservation fences the merge and signals the writer to stop', async () => {
    const { prefix, a, b } = twoInstances({ reserveTtlMs: 300 });
    await a.store.put(sampleRecord('lost', { total: 1 }));
    const reservation = (await a.locker.reserve('lost', { start: 0, end: 9 }))!;
    const aborted = new Promise<void>((resolve) => reservation.lost.addEventListener('abort', () => resolve()));
    const keys = await client().keys(`${prefix}rv:*`);
    expect(keys).toHaveLength(1);
    await client().del(keys[0]);
    await expect(a.store.update('lost', (r) => ({ record: { ...r!, total: 2 }, result: null }), [reservation as Lease])).rejects.toBeInstanceOf(LeaseLostError);
    await aborted;
    expect(reservation.held).toBe(false);
    expect(await b.locker.reserve('lost', { start: 0, end: 9 })).not.toBeNull();
  });

  test('ids lists every session of the prefix across instances', async () => {
    const { a, b } = twoInstances();
    await a.store.put(sampleRecord('one'));
    await b.store.put(sampleRecord('two'));
    const ids: string[] = [];
    for await (const id of a.store.ids()) ids.push(id);
    expect(ids.sort()).toEqual(['one', 'two']);
  });

  test('an unreachable Redis is a StateUnavailableError (answered 503), not a hang', async () => {
    const { a } = twoInstances();
    a.client.disconnect();
    const started = Date.now();
    await expect(a.store.get('x')).rejects.toThrow(/session state \(Redis\) is unavailable/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
