/**
 * Upload progress across two in-process gateway instances on one real redis-server
 * (`upload_state_redis`): the zone lives in Redis, so a probe on either instance sees the bytes a
 * segment streams into the other, whole-session totals whichever instance got which segment, the
 * duplicate rule (P2) across instances, and an event stream on one instance following an upload to
 * the other.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { DEFAULT_LOCATION, startTestGateway, type TestGateway } from '../helpers/gateway';
import { tempDir } from '../helpers/process';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { waitFor } from './contracts';
import { fileHeaders, openUpload, probe, probeUntil, segmentHeaders, SseClient } from './helpers';

let redis: RedisProcess;
let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  // Throws (failing every test) when redis-server is not installed: never skipped.
  redis = await startRedis();
  const zone = path.join(tempDir('progress-shared-'), 'zone');
  const replica = () =>
    startTestGateway({
      locationBody: `${DEFAULT_LOCATION.replace(/__STORE__/g, zone)}\n    track_uploads proxied 5s;\n`,
      topLevel: `upload_state_redis ${redis.url};\nupload_progress proxied 1m;\nlocation = /p-json { upload_progress_json_output; report_uploads proxied; }\nlocation ^~ /progress { report_uploads proxied; }\n`,
      gatewayOptions: { redis: { prefix: 'progress-pair:', reserveTtlMs: 1500 } },
    });
  a = await replica();
  b = await replica();
}, 30_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
});

const json = (gw: TestGateway, id: string) => probe(gw.port, `/p-json?X-Progress-ID=${id}`).then((r) => r.body.toString());

test('the zone is in Redis on both instances', () => {
  expect(a.gateway.config.progressZones[0]!.stateRedis).toBe(redis.url);
  expect(a.gateway.progress('proxied')!.constructor.name).toBe('RedisProgressZone');
});

test('segments alternating between instances: both report the whole session, bytes in flight included', async () => {
  const data = randomBytes(40_000);
  const segment = (gw: TestGateway, start: number, end: number) => openUpload(gw.port, '/upload', segmentHeaders('pair-s1', 'pp1', start, end, data.length));
  expect((await segment(a, 0, 9999).finish(data.subarray(0, 10_000))).status).toBe(201);
  expect(await json(b, 'pp1')).toBe('{ "state" : "uploading", "received" : 10000, "size" : 40000 }\r\n');
  expect((await segment(b, 10_000, 19_999).finish(data.subarray(10_000, 20_000))).status).toBe(201);
  expect(await json(a, 'pp1')).toBe('{ "state" : "uploading", "received" : 20000, "size" : 40000 }\r\n');

  // A segment streaming into A: B sees its bytes as they arrive (A reports at most every 100 ms).
  const streaming = segment(a, 20_000, 29_999);
  streaming.write(data.subarray(20_000, 25_000));
  await probeUntil(b.port, '/p-json?X-Progress-ID=pp1', '{ "state" : "uploading", "received" : 25000, "size" : 40000 }\r\n');
  // And one streaming into B at the same time, seen by A.
  const other = segment(b, 30_000, 39_999);
  other.write(data.subarray(30_000, 31_000));
  await probeUntil(a.port, '/p-json?X-Progress-ID=pp1', '{ "state" : "uploading", "received" : 26000, "size" : 40000 }\r\n');
  expect((await streaming.finish(data.subarray(25_000, 30_000))).status).toBe(201);
  expect((await other.finish(data.subarray(31_000, 40_000))).status).toBe(200);
  expect(await json(a, 'pp1')).toBe('{ "state" : "done" }\r\n');
  expect(await json(b, 'pp1')).toBe('{ "state" : "done" }\r\n');
});

test('P2 across instances: an id in use on one instance is a duplicate (500) on the other', async () => {
  const first = openUpload(a.port, '/upload', fileHeaders('pair-dup', 1000));
  first.write(randomBytes(100));
  await probeUntil(b.port, '/p-json?X-Progress-ID=pair-dup', (body) => body.includes('"received" : 100'));
  expect((await openUpload(b.port, '/upload', fileHeaders('pair-dup', 3)).finish('abc')).status).toBe(500);
  expect((await first.finish(randomBytes(900))).status).toBe(200);
  expect(await json(b, 'pair-dup')).toBe('{ "state" : "done" }\r\n');
});

test('an event stream on B follows an upload to A to the end; nothing is left watching', async () => {
  const total = 30_000;
  const sse = new SseClient(b.port, '/progress?X-Progress-ID=pair-sse');
  await waitFor(() => sse.events.length > 0, 2000, 'the first event');
  const upload = openUpload(a.port, '/upload', fileHeaders('pair-sse', total));
  for (let sent = 0; sent < total; sent += 1000) {
    upload.write(randomBytes(1000));
    await new Promise((r) => setTimeout(r, 25));
  }
  expect((await upload.finish()).status).toBe(200);
  await sse.done;
  const states = sse.states;
  const uploading = states.filter((s) => s.state === 'uploading');
  expect(uploading.length).toBeGreaterThanOrEqual(3);
  expect(uploading.some((s) => s.received > 0 && s.received < total)).toBe(true);
  expect(states[states.length - 1]).toMatchObject({ state: 'done', received: total, total });
  for (let i = 1; i < sse.events.length; i++) expect(sse.events[i]!.at - sse.events[i - 1]!.at).toBeGreaterThanOrEqual(85);
  await waitFor(() => b.gateway.progress('proxied')!.watchers() === 0, 2000, 'no listener on B');
});
