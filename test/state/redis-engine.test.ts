/**
 * The Redis engine (`upload_state_redis`) against a real redis-server: the contract (with a second
 * instance on the same Redis), and what only shared state shows — fencing of a segment whose
 * reservation was lost, and two round trips per segment.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { RedisSessionEngine } from '../../src/state/redis-engine';
import { createRedisClient } from '../../src/state/redis-client';
import { DataFilePool } from '../../src/store/data-file-pool';
import { tempDir } from '../helpers/process';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { newId, POLICY, restartable, segmentOf, send, sessionEngineContract, upload } from './engine-contract';

let redis: RedisProcess;
const clients: Redis[] = [];
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

function redisEngine(pool: DataFilePool, prefix: string, reserveTtlMs = 6000): RedisSessionEngine {
  const client = createRedisClient(redis.url);
  clients.push(client);
  return new RedisSessionEngine(client, { prefix, instanceId: randomUUID(), dataFiles: pool, reserveTtlMs });
}

sessionEngineContract('Redis (Lua)', async ({ pool, store }) => {
  const prefix = `contract${++prefixes}:`;
  return restartable(store, () => redisEngine(pool, prefix), () => redisEngine(pool, prefix));
});

describe('Redis engine: fencing and round trips', () => {
  let pool: DataFilePool;
  let store: string;
  beforeEach(() => {
    pool = new DataFilePool();
    store = path.join(tempDir('redis-engine-'), 'store');
    mkdirSync(store);
  });
  afterEach(() => pool.close());

  test('a reservation whose key is gone (expired, taken over) fences the commit: nothing is recorded', async () => {
    const engine = redisEngine(pool, `fence${++prefixes}:`);
    const id = newId('f');
    const file = Buffer.from('abcdefgh');
    await upload(engine, store, id, file, 0, 3);
    const ticket = await engine.begin(segmentOf(store, id, 4, 7, 8), POLICY);
    const admin = redis.client();
    const keys = await admin.keys(`fence${prefixes}:rv:*`);
    expect(keys).toHaveLength(1);
    await admin.del(keys[0]!);
    await expect(send(engine, ticket, file)).rejects.toMatchObject({ name: 'LeaseLostError' });
    expect((await engine.status(id))?.ranges).toEqual([{ start: 0, end: 3 }]);
    admin.disconnect();
    await engine.close();
  });

  test('a reservation taken away while the body streams tells the writer at once (onLost), and later listeners at once too', async () => {
    const engine = redisEngine(pool, `lost${++prefixes}:`, 300);
    const id = newId('l');
    const ticket = await engine.begin(segmentOf(store, id, 0, 3, 8), POLICY);
    const admin = redis.client();
    const lost = new Promise<Error>((resolve) => ticket.fence.onLost(resolve));
    // The renewal timer (every ttl/3) finds its key gone.
    for (const key of await admin.keys(`lost${prefixes}:rv:*`)) await admin.del(key);
    expect((await lost).name).toBe('LeaseLostError');
    let late: Error | null = null;
    ticket.fence.onLost((reason) => (late = reason));
    expect(late).toMatchObject({ name: 'LeaseLostError' });
    expect(() => ticket.fence.check()).toThrow(/reservation of this segment was lost/);
    admin.disconnect();
    await engine.abort(ticket, POLICY);
    await engine.close();
  });

  test('a paused instance (its event loop blocked past the lease) refuses to write when it resumes', async () => {
    const engine = redisEngine(pool, `pause${++prefixes}:`, 600);
    const id = newId('p');
    const ticket = await engine.begin(segmentOf(store, id, 0, 3, 8), POLICY);
    ticket.fence.check();
    // Nothing runs here for longer than the lease: not the renewal timer, not the writes.
    const until = Date.now() + 700;
    while (Date.now() < until);
    expect(() => ticket.fence.check()).toThrow(/reservation of this segment was lost/);
    await engine.abort(ticket, POLICY);
    await engine.close();
  });

  test('a segment costs two Redis round trips (reserve-and-read, fenced commit)', async () => {
    const engine = redisEngine(pool, `trips${++prefixes}:`);
    const id = newId('r');
    const file = Buffer.alloc(30, 1);
    await upload(engine, store, id, file, 0, 9); // creation: one more (the data file's identity)
    const monitor = redis.client();
    const commands: string[] = [];
    const watcher = await monitor.monitor();
    // Commands a Lua script runs inside Redis are listed too (source "lua"): only the client's count.
    watcher.on('monitor', (_t: string, args: string[], source: string) => {
      if (!/lua/.test(source)) commands.push(String(args[0]).toLowerCase());
    });
    await new Promise((r) => setTimeout(r, 100));
    commands.length = 0;
    await upload(engine, store, id, file, 10, 19);
    await new Promise((r) => setTimeout(r, 100));
    expect(commands).toEqual(['evalsha', 'evalsha']);
    watcher.disconnect();
    monitor.disconnect();
    await engine.close();
  });
});
