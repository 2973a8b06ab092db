/**
 * Fencing across instances (issue 9 item 3, D35): two real gateway processes share a Redis and a
 * store. One of them is paused (SIGSTOP) in the middle of a segment's body for longer than its
 * reservation's lease; meanwhile the other acknowledges the same range with different bytes.
 * When the paused one resumes it must write nothing: its segment is answered 503 (send it again),
 * the other instance's acknowledged bytes stay, and the backend receives exactly those.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LOCATION, expectPlainError, listFiles } from '../helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from '../helpers/process';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { randomFile, sendSegment, sleep, statusQuery } from '../helpers/segments';
import { RawCaptureBackend, RawConnection, segmentHead } from './helpers';

const KiB = 1024;
/** The gateway's reservation lease (state/redis-engine.ts): a paused instance loses it after this. */
const LEASE_MS = 6000;

let redis: RedisProcess;
let backend: RawCaptureBackend;
let dir: string;
let store: string;
const gateways: GatewayProcess[] = [];

async function replica(): Promise<GatewayProcess> {
  const port = await freePort();
  const location = DEFAULT_LOCATION.replace(/__STORE__/g, store).replace(/__STATE__/g, path.join(dir, 'state')).replace(/__BACKEND__/g, `127.0.0.1:${backend.port}`);
  const gw = await startGateway(`listen 127.0.0.1:${port};\nupload_state_redis ${redis.url};\nlocation /upload {\n${location}\n}\n`, { port, dir });
  gateways.push(gw);
  return gw;
}

beforeAll(async () => {
  redis = await startRedis();
  backend = await new RawCaptureBackend().start();
  dir = tempDir('fencing-');
  store = path.join(dir, 'store');
  mkdirSync(store);
}, 30_000);

afterAll(async () => {
  for (const gw of gateways) {
    if (gw.child.exitCode === null) gw.child.kill('SIGCONT');
    await gw.stop().catch(() => undefined);
  }
  await backend?.stop();
  await redis?.stop();
});

test('an instance paused past its lease writes nothing when it resumes: the other instance\'s acknowledged bytes stay', async () => {
  const [a, b] = [await replica(), await replica()];
  const id = `fence${process.pid}`;
  const size = 192 * KiB;
  const mine = randomFile(size, 1);
  const theirs = randomFile(size, 2);
  const range = { start: 64 * KiB, end: 128 * KiB - 1 };
  expect((await sendSegment(a.port, id, mine, { start: 0, end: range.start - 1 })).status).toBe(201);

  // A takes the segment and gets half of its body, then stops (SIGSTOP) for longer than its lease.
  const connection = await RawConnection.open(a.port);
  const length = range.end - range.start + 1;
  await connection.write(`${segmentHead(id, `bytes ${range.start}-${range.end}/${size}`, [`Content-Length: ${length}`])}\r\n\r\n`);
  await connection.write(mine.subarray(range.start, range.start + length / 2));
  await sleep(300);
  a.child.kill('SIGSTOP');
  try {
    // While A holds it, B must refuse the range (503); once A's lease has run out, B takes it.
    const early = await sendSegment(b.port, id, theirs, range);
    expectPlainError(early, 503);
    await sleep(LEASE_MS + 1500);
    const taken = await sendSegment(b.port, id, theirs, range);
    expect(taken.status).toBe(201);
    expect(readFileSync(path.join(store, id.slice(-1), id)).subarray(range.start, range.end + 1).equals(theirs.subarray(range.start, range.end + 1))).toBe(true);
  } finally {
    a.child.kill('SIGCONT');
  }
  // A resumes with the rest of its (stale) body: it answers 503 and writes nothing.
  await connection.write(mine.subarray(range.start + length / 2, range.end + 1));
  const answer = await connection.waitAnswers(1, 10_000);
  expect(answer.answers.map((x) => x.status)).toEqual([503]);
  expect(answer.answers[0]!.body.toString()).toMatch(/reservation of this segment was lost/);
  connection.destroy();
  await sleep(300);
  const onDisk = readFileSync(path.join(store, id.slice(-1), id));
  expect(onDisk.subarray(range.start, range.end + 1).equals(theirs.subarray(range.start, range.end + 1))).toBe(true);
  expect(onDisk.subarray(0, range.start).equals(mine.subarray(0, range.start))).toBe(true);

  // The upload completes through A (alive again): the backend gets the acknowledged bytes.
  expect((await statusQuery(a.port, id)).headers.range).toBe(`0-${range.end}/${size}`);
  const calls = backend.requests.length;
  const expected = Buffer.concat([mine.subarray(0, range.start), theirs.subarray(range.start, range.end + 1), mine.subarray(range.end + 1)]);
  expect((await sendSegment(a.port, id, expected, { start: range.end + 1, end: size - 1 })).status).toBe(200);
  expect(backend.requests.length).toBe(calls + 1);
  const sha256 = backend.requests[calls]!.fields.find(([name]) => name === 'sha256')?.[1];
  expect(sha256).toBe(createHash('sha256').update(expected).digest('hex'));
  expect(listFiles(store).filter((f) => !f.startsWith('.'))).toEqual([`${id.slice(-1)}/${id}`]);
}, 60_000);
