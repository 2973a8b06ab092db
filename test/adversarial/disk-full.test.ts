/**
 * A full disk (issue 9 item 4, D34): the store and the state directory are small tmpfs mounts
 * (`mount -t tmpfs -o size=…`; root needed, as in CI). A write that does not fit is answered
 * `507 Insufficient Storage` with a one-line reason, never a `201` for bytes not stored; the
 * acknowledged bytes stay intact; nothing of the failed request is left behind; and the same
 * request succeeds once space is freed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, statfsSync } from 'node:fs';
import * as path from 'node:path';
import { expectPlainError, httpRequest, listFiles } from '../helpers/gateway';
import { tempDir } from '../helpers/process';
import { randomFile, send, sendSegment, statusQuery } from '../helpers/segments';
import { expectNoErrorLogged, expectNothingLeaked, snapshot, startAttackedGateway, type AttackedGateway } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;
let root: string;
let store: string;
let state: string;
let gw: AttackedGateway;

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`cannot mount a tmpfs at ${dir} (${result.stderr || result.error?.message}): the disk-full tests need root (CI runs .ci/run as root)`);
  }
}

/** Fills the file system of `dir` with a filler file until at most `leave` bytes are free; returns its path. */
function fill(dir: string, leave: number): string {
  const filler = path.join(dir, `filler-${Date.now()}`);
  const free = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  const size = Math.max(0, free() - leave);
  writeFileSync(filler, Buffer.alloc(size));
  // tmpfs rounds to pages: top up with single pages until the rest fits `leave`.
  let extra = 0;
  try {
    while (free() > leave) writeFileSync(`${filler}.${extra++}`, Buffer.alloc(4 * KiB));
  } catch {
    // full
  }
  return filler;
}

function unfill(filler: string): void {
  const dir = path.dirname(filler);
  for (const name of listFiles(dir)) if (name.startsWith(path.basename(filler))) rmSync(path.join(dir, name));
}

beforeAll(async () => {
  root = tempDir('disk-full-');
  store = path.join(root, 'store');
  state = path.join(root, 'state');
  mountTmpfs(store, '8m');
  mountTmpfs(state, '64k');
  gw = await startAttackedGateway({ store, state });
});

afterAll(async () => {
  await gw?.stop();
  for (const dir of [store, state]) if (dir) spawnSync('umount', [dir]);
  if (root) rmSync(root, { recursive: true, force: true });
});

test('the data store fills up: 507 with the reason, acknowledged bytes intact, the same segment succeeds once space is freed', async () => {
  const id = `full${process.pid}a`;
  const file = randomFile(3 * MiB, 1);
  expect((await sendSegment(gw.port, id, file, { start: 0, end: MiB - 1 })).status).toBe(201);
  const filler = fill(store, 200 * KiB);
  const before = await snapshot(gw);
  const refused = await sendSegment(gw.port, id, file, { start: MiB, end: 2 * MiB - 1 });
  expectPlainError(refused, 507);
  expect(refused.body.toString()).toMatch(/the upload store is full \(ENOSPC\); nothing of this request was stored/);
  // Nothing was recorded for it; the acknowledged bytes are as they were.
  const status = await statusQuery(gw.port, id);
  expect(status.headers.range).toBe(`0-${MiB - 1}/${3 * MiB}`);
  expect(readFileSync(gw.dataPath(id)).subarray(0, MiB).equals(file.subarray(0, MiB))).toBe(true);
  // A temporary-named upload and a multipart form: 507, and their files are gone.
  const temp = await send(gw.port, httpRequest('POST', '/upload', [
    ['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment; filename="t.bin"'], ['Content-Length', String(MiB)],
  ]), randomFile(MiB, 2));
  expectPlainError(temp, 507);
  const boundary = 'B0undary';
  const form = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="m.bin"\r\n\r\n`),
    randomFile(MiB, 3),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const multipart = await send(gw.port, httpRequest('POST', '/upload', [['Content-Type', `multipart/form-data; boundary=${boundary}`], ['Content-Length', String(form.length)]]), form);
  expectPlainError(multipart, 507);
  await expectNothingLeaked(gw, before);
  // Space comes back: the same segments go through, the file is byte-identical at the backend.
  unfill(filler);
  expect((await sendSegment(gw.port, id, file, { start: MiB, end: 2 * MiB - 1 })).status).toBe(201);
  expect((await sendSegment(gw.port, id, file, { start: 2 * MiB, end: 3 * MiB - 1 })).status).toBe(200);
  expect(readFileSync(gw.dataPath(id)).equals(file)).toBe(true);
  rmSync(gw.dataPath(id)); // the backend took it
  expectNoErrorLogged(gw);
});

test('the state store fills up: a new session is refused with 507 and leaves no data file; an existing one keeps what it acknowledged', async () => {
  const id = `full${process.pid}b`;
  const file = randomFile(64 * KiB, 4);
  expect((await sendSegment(gw.port, id, file, { start: 0, end: 1023 })).status).toBe(201);
  const filler = fill(state, 0);
  // A new session cannot write its journal: 507, and its data file is not left behind.
  const fresh = `full${process.pid}c`;
  const refused = await sendSegment(gw.port, fresh, file, { start: 0, end: 1023 });
  expectPlainError(refused, 507);
  expect(refused.body.toString()).toMatch(/the session state store is full/);
  expect(listFiles(store).filter((f) => f.endsWith(fresh))).toEqual([]);
  // The existing session: segments go on while its journal's last page has room, then 507.
  let acknowledged = 1024;
  let last = 201;
  for (let k = 1; k < 64 && last === 201; k++) {
    const res = await sendSegment(gw.port, id, file, { start: k * 1024, end: k * 1024 + 1023 });
    last = res.status;
    if (last === 201) acknowledged = (k + 1) * 1024;
    else expectPlainError(res, 507);
  }
  expect(last).toBe(507);
  const status = await statusQuery(gw.port, id);
  expect(status.headers.range).toBe(`0-${acknowledged - 1}/${file.length}`);
  unfill(filler);
  // Once freed: the refused segment and the rest go through.
  for (let start = acknowledged; start < file.length; start += 1024) {
    const res = await sendSegment(gw.port, id, file, { start, end: start + 1023 });
    expect(res.status).toBe(start + 1024 === file.length ? 200 : 201);
  }
  expect(readFileSync(gw.dataPath(id)).equals(file)).toBe(true);
  expect((await sendSegment(gw.port, fresh, file, { start: 0, end: 1023 })).status).toBe(201);
  expectNoErrorLogged(gw);
});
