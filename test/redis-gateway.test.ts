/**
 * Two in-process gateways sharing one real redis-server (`upload_state_redis`) and one store
 * directory, as two replicas behind a load balancer: a session continues on either, completion is
 * exactly-once whichever replica gets the last bytes (D7), in-flight reservations hold across
 * replicas (D4), and start-up and /healthz check what the shared set-up needs.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CaptureBackend, DEFAULT_LOCATION, startTestGateway, type TestGateway } from './helpers/gateway';
import { startRedis, type RedisProcess } from './helpers/redis';
import { send, sendSegment, sleep, statusQuery } from './helpers/segments';
import { httpRequest } from './helpers/gateway';
import { tempDir } from './helpers/process';
import { segmentsOf } from './helpers/retrying-upload';
import { SHARED_MARKER } from '../src/state/backends';

let redis: RedisProcess;
let backend: CaptureBackend;
let prefixes = 0;

beforeAll(async () => {
  // Throws (failing every test) when redis-server is not installed: never skipped.
  redis = await startRedis();
  backend = await new CaptureBackend().start();
}, 20_000);

afterAll(async () => {
  await backend?.stop();
  await redis?.stop();
});

interface Pair {
  a: TestGateway;
  b: TestGateway;
  store: string;
  close(): Promise<void>;
}

function locationBody(store: string): string {
  return DEFAULT_LOCATION.replace(/__STORE__/g, store).replace(/__BACKEND__/g, `127.0.0.1:${backend.port}`);
}

async function startReplica(store: string, url: string, prefix: string): Promise<TestGateway> {
  return startTestGateway({
    locationBody: locationBody(store),
    topLevel: `upload_state_redis ${url};`,
    gatewayOptions: { redis: { prefix, reserveTtlMs: 1500 } },
  });
}

/** Two replicas: one Redis (a fresh key prefix), one store directory. */
async function startPair(): Promise<Pair> {
  const store = path.join(tempDir('shared-store-'), 'store');
  const prefix = `gw${++prefixes}:`;
  const a = await startReplica(store, redis.url, prefix);
  const b = await startReplica(store, redis.url, prefix);
  return { a, b, store, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

function callsFor(id: string): number {
  return backend.calls.filter((call) => call.rawHeaders.some((v, i) => i % 2 === 1 && v === id && call.rawHeaders[i - 1].toLowerCase() === 'session-id')).length;
}

describe('two replicas on one Redis', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => {
    await pair?.close();
  });

  test('segments alternating between replicas make one upload, handed off once', async () => {
    const data = randomBytes(300_000);
    const id = `alt-${randomBytes(4).toString('hex')}`;
    const ranges = segmentsOf(data.length, 64 * 1024);
    const answers = [];
    for (const [i, range] of ranges.entries()) answers.push(await sendSegment((i % 2 ? pair.a : pair.b).port, id, data, range));
    expect(answers.slice(0, -1).map((r) => r.status)).toEqual(ranges.slice(0, -1).map(() => 201));
    expect(answers.at(-1)!.status).toBe(200);
    expect(callsFor(id)).toBe(1);
    // Either replica reports the completed session; a repeated segment is replayed, not handed off again.
    for (const gw of [pair.a, pair.b]) {
      const status = await statusQuery(gw.port, id);
      expect(status.headers['x-upload-state']).toBe('complete');
      const replay = await sendSegment(gw.port, id, data, ranges[0]);
      expect(replay.status).toBe(200);
    }
    expect(callsFor(id)).toBe(1);
  });

  test('the last two segments completing at once on different replicas: exactly one hand-off (D7)', async () => {
    for (let round = 0; round < 8; round++) {
      const data = randomBytes(40_000);
      const id = `race-${round}-${randomBytes(4).toString('hex')}`;
      const ranges = segmentsOf(data.length, 10_000);
      for (const range of ranges.slice(0, 2)) expect((await sendSegment(pair.a.port, id, data, range)).status).toBe(201);
      const [x, y] = await Promise.all([sendSegment(pair.a.port, id, data, ranges[2]), sendSegment(pair.b.port, id, data, ranges[3])]);
      expect([x.status, y.status].sort()).toEqual([200, 201]);
      expect(callsFor(id)).toBe(1);
    }
  });

  test('the same last segment sent to both replicas at once: one hand-off, the other is told to retry or replayed', async () => {
    const data = randomBytes(20_000);
    const id = `dup-${randomBytes(4).toString('hex')}`;
    const ranges = segmentsOf(data.length, 10_000);
    expect((await sendSegment(pair.b.port, id, data, ranges[0])).status).toBe(201);
    const both = await Promise.all([sendSegment(pair.a.port, id, data, ranges[1]), sendSegment(pair.b.port, id, data, ranges[1])]);
    expect(both.map((r) => r.status)).toContain(200);
    for (const r of both) expect([200, 503]).toContain(r.status);
    expect(callsFor(id)).toBe(1);
  });

  test('an overlapping segment in flight on the other replica is answered 503 + Retry-After (D4)', async () => {
    const data = randomBytes(200_000);
    const id = `overlap-${randomBytes(4).toString('hex')}`;
    let release!: () => void;
    let reachedPause!: () => void;
    const atPause = new Promise<void>((resolve) => (reachedPause = resolve));
    const first = sendSegment(pair.a.port, id, data, { start: 0, end: 99_999 }, {
      pauseAt: {
        bodyBytes: 50_000,
        hook: () => {
          reachedPause();
          return new Promise<void>((resolve) => (release = resolve));
        },
      },
    });
    await atPause;
    await sleep(100);
    const other = await sendSegment(pair.b.port, id, data, { start: 50_000, end: 149_999 });
    expect(other.status).toBe(503);
    expect(other.headers['retry-after']).toBe('1');
    const disjoint = await sendSegment(pair.b.port, id, data, { start: 100_000, end: 199_999 });
    expect(disjoint.status).toBe(201);
    release();
    // Its bytes complete the upload.
    expect((await first).status).toBe(200);
    const status = await statusQuery(pair.a.port, id);
    expect(status.body.toString()).toBe('0-199999/200000');
    expect(callsFor(id)).toBe(1);
  });

  test('/healthz is ok on both replicas', async () => {
    for (const gw of [pair.a, pair.b]) {
      const r = await send(gw.port, httpRequest('GET', '/healthz', []), Buffer.alloc(0));
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('ok\n');
    }
  });
});

describe('start-up and health with Redis', () => {
  test('an unreachable Redis stops start-up with a clear reason', async () => {
    const store = path.join(tempDir('store-'), 'store');
    await expect(startReplica(store, 'redis://127.0.0.1:1/0', 'x:')).rejects.toThrow(/upload_state_redis redis:\/\/127\.0\.0\.1:1\/0: Redis does not answer/);
  });

  test('a store that cannot be written stops start-up with a clear reason', async () => {
    const parent = tempDir('store-');
    writeFileSync(path.join(parent, 'file'), 'not a directory');
    await expect(startReplica(path.join(parent, 'file', 'store'), redis.url, `w${++prefixes}:`)).rejects.toThrow(/upload_store directory .* is not writable/);
  });

  test('a replica whose store is not the shared directory refuses to start', async () => {
    const store = path.join(tempDir('store-'), 'store');
    const prefix = `m${++prefixes}:`;
    const first = await startReplica(store, redis.url, prefix);
    try {
      // What a replica sees when its "shared" path is really a local directory: another marker.
      writeFileSync(path.join(store, SHARED_MARKER), 'something else');
      await expect(startReplica(store, redis.url, prefix)).rejects.toThrow(/is not the directory the other gateway instances .* use/);
    } finally {
      await first.close();
    }
  }, 20_000);

  test('/healthz answers 503 with the reason when Redis is down, and segments get 503 + Retry-After', async () => {
    const own = await startRedis();
    const store = path.join(tempDir('store-'), 'store');
    const gw = await startReplica(store, own.url, 'h:');
    try {
      await own.stop();
      const health = await send(gw.port, httpRequest('GET', '/healthz', []), Buffer.alloc(0));
      expect(health.status).toBe(503);
      expect(health.body.toString()).toMatch(/^Redis redis:\/\/127\.0\.0\.1:\d+\/0 does not answer/);
      const segment = await sendSegment(gw.port, 'down1', Buffer.alloc(10, 1), { start: 0, end: 4 });
      expect(segment.status).toBe(503);
      expect(segment.headers['retry-after']).toBe('1');
    } finally {
      await gw.close();
    }
  }, 20_000);

  test('/healthz answers 503 when a store stops taking writes', async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: make the store a file instead of a directory.
      const store = path.join(tempDir('store-'), 'store');
      const gw = await startReplica(store, redis.url, `s${++prefixes}:`);
      try {
        const { rmSync } = await import('node:fs');
        rmSync(store, { recursive: true, force: true });
        writeFileSync(store, 'not a directory');
        const health = await send(gw.port, httpRequest('GET', '/healthz', []), Buffer.alloc(0));
        expect(health.status).toBe(503);
        expect(health.body.toString()).toMatch(/^upload_store directory .* is not writable/);
      } finally {
        await gw.close();
      }
      return;
    }
    const store = path.join(tempDir('store-'), 'store');
    mkdirSync(store);
    const gw = await startReplica(store, redis.url, `s${++prefixes}:`);
    try {
      chmodSync(store, 0o500);
      const health = await send(gw.port, httpRequest('GET', '/healthz', []), Buffer.alloc(0));
      expect(health.status).toBe(503);
    } finally {
      chmodSync(store, 0o700);
      await gw.close();
    }
  });
});
