/**
 * tus 1.0.0 over raw requests against a real gateway: core, creation, creation-with-upload,
 * creation-defer-length, termination, expiration, checksum and concatenation; upload URLs checked
 * as strictly as Session-IDs; the same sessions as segments (journal, status query D22, mixed
 * protocols, exactly one hand-off with the module's form fields).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { dataPath, listFiles, query, segmentRequest, send, sid, sleep, startTestGateway, type TestGateway } from '../helpers/gateway';
import { randomFile } from '../helpers/segments';
import { tempDir } from '../helpers/process';
import { checksum, expectHandedOffOnce, metadata, request, startTusGateway, TUS } from '../helpers/tus';
import { concatenateInto } from '../../src/store/concatenate';
import { createExclusive } from '../../src/store/files';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTusGateway('    upload_add_header X-Added yes;');
});
afterAll(() => gw.close());

const OCTETS = ['Content-Type', 'application/offset+octet-stream'] as const;

async function create(length: number | null, name: string, extra: Array<[string, string]> = [], body?: Buffer): Promise<{ url: string; id: string; res: Awaited<ReturnType<typeof request>> }> {
  const res = await request(gw, 'POST', '/upload', [[...TUS], length === null ? ['Upload-Defer-Length', '1'] : ['Upload-Length', String(length)], ['Upload-Metadata', metadata(name)], ...(body ? [[...OCTETS] as [string, string]] : []), ...extra], body);
  const url = res.headers.location ?? '';
  return { url, id: url.split('/').pop()!, res };
}

function patch(url: string, offset: number, body: Buffer, extra: Array<[string, string]> = []) {
  return request(gw, 'PATCH', url, [[...TUS], [...OCTETS], ['Upload-Offset', String(offset)], ...extra], body);
}

test('OPTIONS: tus discovery and the draft\'s limits for tus and draft clients on an upload_tus location; the module\'s answer otherwise unchanged', async () => {
  const moduleClient = await request(gw, 'OPTIONS', '/upload', []);
  expect(moduleClient.status).toBe(200);
  expect(Object.keys(moduleClient.headers).filter((h) => h.startsWith('tus-') || h.startsWith('upload-'))).toEqual([]);
  expect((await request(gw, 'OPTIONS', '/upload', [['Upload-Draft-Interop-Version', '8']])).headers['upload-limit']).toBe('max-append-size=104857600, max-age=86400');
  const res = await request(gw, 'OPTIONS', '/upload', [[...TUS]]);
  expect(res.status).toBe(200);
  expect(res.headers['tus-version']).toBe('1.0.0');
  expect(res.headers['tus-extension']).toBe('creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation');
  expect(res.headers['tus-checksum-algorithm']).toBe('md5,sha1,sha256');
  expect(res.headers['upload-limit']).toBe('max-append-size=104857600, max-age=86400');
  expect(res.headers['x-added']).toBe('yes');
  const plain = await startTestGateway();
  try {
    const legacy = await request(plain, 'OPTIONS', '/upload', []);
    expect(legacy.status).toBe(200);
    expect(Object.keys(legacy.headers).filter((h) => h.startsWith('tus-') || h.startsWith('upload-'))).toEqual([]);
  } finally {
    await plain.close();
  }
});

test('creation, HEAD, PATCH in two parts: 201 Location, offsets, expiry; the last PATCH hands off once with the module\'s fields; journaled; the status query (D22) sees it', async () => {
  const data = randomFile(300_000, 1);
  const { url, id, res } = await create(data.length, 'tus one.bin');
  expect(res.status).toBe(201);
  expect(res.headers['tus-resumable']).toBe('1.0.0');
  expect(url).toMatch(/^\/upload\/[A-Za-z0-9_-]{32}$/);
  const expires = Date.parse(res.headers['upload-expires']!);
  expect(Math.abs(expires - (Date.now() + 24 * 3600_000))).toBeLessThan(5000);
  let head = await request(gw, 'HEAD', url, [[...TUS]]);
  expect(head.status).toBe(200);
  expect(head.headers).toMatchObject({ 'upload-offset': '0', 'upload-length': '300000', 'cache-control': 'no-store', 'upload-metadata': metadata('tus one.bin') });
  const first = await patch(url, 0, data.subarray(0, 100_000));
  expect(first.status).toBe(204);
  expect(first.headers['upload-offset']).toBe('100000');
  head = await request(gw, 'HEAD', url, [[...TUS]]);
  expect(head.headers['upload-offset']).toBe('100000');
  // The module's status query on the same session.
  const status = await query(gw, id);
  expect(status.status).toBe(200);
  expect(status.headers).toMatchObject({ range: '0-99999/300000', 'x-upload-state': 'incomplete' });
  const last = await patch(url, 100_000, data.subarray(100_000));
  expect(last.status).toBe(200);
  expect(last.body.toString()).toBe('backend 200\n');
  expect(last.headers).toMatchObject({ 'upload-offset': '300000', 'tus-resumable': '1.0.0', 'x-added': 'yes' });
  const call = expectHandedOffOnce(gw, 'tus one.bin', data);
  expect(gw.backend.field(call, 'path')).toBe(dataPath(gw, id));
  expect(gw.backend.field(call, 'content_type')).toBe('application/octet-stream');
  expect(listFiles(gw.state)).toContain(`${id}.journal`);
  // Again (a lost answer): the stored answer, no second hand-off.
  expect((await request(gw, 'HEAD', url, [[...TUS]])).headers['upload-offset']).toBe('300000');
  expect((await patch(url, 299_999, data.subarray(299_999))).body.toString()).toBe('backend 200\n');
  expectHandedOffOnce(gw, 'tus one.bin', data);
  expect((await query(gw, id)).headers['x-upload-state']).toBe('complete');
});

test('refusals: Tus-Resumable 412, wrong offset 409, wrong type 415, unknown upload 404; URLs that are no Session-ID name no upload', async () => {
  const data = randomFile(1000, 2);
  const { url } = await create(data.length, 'refusals.bin');
  const old = await request(gw, 'HEAD', url, [['Tus-Resumable', '0.2.2']]);
  expect(old.status).toBe(412);
  expect(old.headers['tus-version']).toBe('1.0.0');
  expect((await patch(url, 10, data.subarray(10))).status).toBe(409);
  expect((await request(gw, 'PATCH', url, [[...TUS], ['Content-Type', 'text/plain'], ['Upload-Offset', '0']], data)).status).toBe(415);
  expect((await patch('/upload/nosuchupload', 0, data)).status).toBe(404);
  expect((await request(gw, 'POST', '/upload', [[...TUS], ['Upload-Length', '0']])).status).toBe(400);
  expect((await request(gw, 'POST', '/upload', [[...TUS]])).status).toBe(400);
  const before = listFiles(gw.store);
  for (const target of ['/upload/a.b', '/upload/a/b', '/upload/..%2Fx', '/upload/%41bc', `/upload/${'x'.repeat(201)}`]) {
    const res = await patch(target, 0, data);
    expect([target, res.status]).toEqual([target, 404]);
  }
  expect(listFiles(gw.store)).toEqual(before);
  expect((await request(gw, 'HEAD', url, [[...TUS]])).headers['upload-offset']).toBe('0');
});

test('checksum: md5, sha1 and sha256 verified; a mismatch is 460 and records nothing; an unknown algorithm is 400', async () => {
  const data = randomFile(3000, 3);
  const { url } = await create(data.length, 'checksum.bin');
  const part = (from: number, to: number) => data.subarray(from, to);
  expect((await patch(url, 0, part(0, 1000), [['Upload-Checksum', checksum('md5', part(0, 1000))]])).status).toBe(204);
  const bad = await patch(url, 1000, part(1000, 2000), [['Upload-Checksum', checksum('sha1', part(0, 1000))]]);
  expect(bad.status).toBe(460);
  expect(bad.headers['tus-resumable']).toBe('1.0.0');
  expect((await request(gw, 'HEAD', url, [[...TUS]])).headers['upload-offset']).toBe('1000');
  expect((await patch(url, 1000, part(1000, 2000), [['Upload-Checksum', 'crc32 AAAAAA==']])).status).toBe(400);
  expect((await patch(url, 1000, part(1000, 2000), [['Upload-Checksum', checksum('sha1', part(1000, 2000))]])).status).toBe(204);
  expect((await patch(url, 2000, part(2000, 3000), [['Upload-Checksum', checksum('sha256', part(2000, 3000))]])).status).toBe(200);
  expectHandedOffOnce(gw, 'checksum.bin', data);
});

test('creation-defer-length: the length comes with a later PATCH; creation-with-upload: data in the POST, the whole file hands off at once', async () => {
  const data = randomFile(5000, 4);
  const { url } = await create(null, 'deferred.bin');
  expect((await request(gw, 'HEAD', url, [[...TUS]])).headers['upload-defer-length']).toBe('1');
  expect((await patch(url, 0, data.subarray(0, 2000))).headers['upload-offset']).toBe('2000');
  const last = await patch(url, 2000, data.subarray(2000), [['Upload-Length', '5000']]);
  expect(last.status).toBe(200);
  expectHandedOffOnce(gw, 'deferred.bin', data);

  const part = randomFile(4000, 5);
  const started = await create(part.length, 'with-upload.bin', [], part.subarray(0, 1500));
  expect(started.res.status).toBe(201);
  expect(started.res.headers['upload-offset']).toBe('1500');
  expect((await patch(started.url, 1500, part.subarray(1500))).status).toBe(200);
  expectHandedOffOnce(gw, 'with-upload.bin', part);

  const whole = randomFile(2500, 6);
  const once = await create(whole.length, 'whole.bin', [], whole);
  expect(once.res.status).toBe(200);
  expect(once.res.headers).toMatchObject({ location: once.url, 'upload-offset': '2500' });
  expectHandedOffOnce(gw, 'whole.bin', whole);
});

test('termination: DELETE removes an incomplete upload with its data; then it is unknown', async () => {
  const data = randomFile(2000, 7);
  const { url, id } = await create(data.length, 'terminated.bin');
  await patch(url, 0, data.subarray(0, 500));
  expect(existsSync(dataPath(gw, id))).toBe(true);
  expect((await request(gw, 'DELETE', url, [[...TUS]])).status).toBe(204);
  expect(existsSync(dataPath(gw, id))).toBe(false);
  expect((await request(gw, 'HEAD', url, [[...TUS]])).status).toBe(404);
  expect((await request(gw, 'DELETE', url, [[...TUS]])).status).toBe(404);
  expect((await query(gw, id)).status).toBe(404);
});

test('mixed: a file started with segments is finished with tus at /upload/<Session-ID>, and a tus upload is finished with segments', async () => {
  const data = randomFile(9000, 8);
  const id = sid('mix');
  expect((await send(gw, segmentRequest(id, 0, 2999, data.length, data.subarray(0, 3000)))).status).toBe(201);
  // Out of order: bytes 6000-8999 too; tus continues at the contiguous end and compares what it resends.
  expect((await send(gw, segmentRequest(id, 6000, 8999, data.length, data.subarray(6000)))).status).toBe(201);
  const head = await request(gw, 'HEAD', `/upload/${id}`, [[...TUS]]);
  expect(head.headers).toMatchObject({ 'upload-offset': '3000', 'upload-length': '9000' });
  const done = await patch(`/upload/${id}`, 3000, data.subarray(3000));
  expect(done.status).toBe(200);
  expectHandedOffOnce(gw, 'big.bin', data);

  const other = randomFile(4000, 9);
  const { url, id: tusId } = await create(other.length, 'big2.bin');
  await patch(url, 0, other.subarray(0, 1000));
  const seg = await send(gw, segmentRequest(tusId, 1000, 3999, other.length, other.subarray(1000)));
  expect(seg.status).toBe(200);
  // The completing request describes the file (as the module does): the segment's Content-Disposition.
  expect(gw.backend.calls.filter((c) => gw.backend.field(c, 'path') === dataPath(gw, tusId))).toHaveLength(1);
  expect(readFileSync(dataPath(gw, tusId)).equals(other)).toBe(true);
});

test('concatenation: partial uploads assembled into a final one, handed off once; a repeated final request is replayed; the partials are consumed', async () => {
  const data = randomFile(70_000, 10);
  const parts = [data.subarray(0, 30_000), data.subarray(30_000)];
  const urls: string[] = [];
  for (const part of parts) {
    const { url, res } = await create(part.length, 'part.bin', [['Upload-Concat', 'partial']]);
    expect(res.status).toBe(201);
    expect((await patch(url, 0, part)).status).toBe(204);
    expect((await request(gw, 'HEAD', url, [[...TUS]])).headers).toMatchObject({ 'upload-concat': 'partial', 'upload-offset': String(part.length) });
    urls.push(url);
  }
  expect(gw.backend.calls.filter((c) => gw.backend.field(c, 'name') === 'part.bin')).toHaveLength(0);
  const concat = ['Upload-Concat', `final;http://elsewhere.example${urls[0]} ${urls[1]}`] as [string, string];
  const final = await request(gw, 'POST', '/upload', [[...TUS], concat, ['Upload-Metadata', metadata('final.bin')]]);
  expect(final.status).toBe(200);
  expect(final.headers.location).toMatch(/^\/upload\/[A-Za-z0-9_-]{32}$/);
  expectHandedOffOnce(gw, 'final.bin', data);
  const again = await request(gw, 'POST', '/upload', [[...TUS], concat, ['Upload-Metadata', metadata('final.bin')]]);
  expect([again.status, again.headers.location]).toEqual([200, final.headers.location]);
  expectHandedOffOnce(gw, 'final.bin', data);
  const head = await request(gw, 'HEAD', final.headers.location!, [[...TUS]]);
  expect(head.headers['upload-concat']).toBe(`final;${urls.join(' ')}`);
  for (const url of urls) {
    expect((await request(gw, 'HEAD', url, [[...TUS]])).headers['upload-offset']).toBe(url === urls[0] ? '30000' : '40000');
    expect(existsSync(dataPath(gw, url.split('/').pop()!))).toBe(false);
  }
  // Not partial, or not complete: refused.
  const incomplete = await create(10, 'p.bin', [['Upload-Concat', 'partial']]);
  expect((await request(gw, 'POST', '/upload', [[...TUS], ['Upload-Concat', `final;${incomplete.url}`]])).status).toBe(400);
  expect((await request(gw, 'POST', '/upload', [[...TUS], ['Upload-Concat', 'final;/upload/../../etc/passwd']])).status).toBe(400);
});

test('the final upload is assembled by the kernel: cat copies with copy_file_range, the bytes never pass through the gateway', async () => {
  const dir = tempDir('concat-');
  const sources = [randomFile(3 << 20, 11), randomFile(1 << 20, 12)].map((data, i) => {
    const file = path.join(dir, `part${i}`);
    writeFileSync(file, data);
    return { file, data };
  });
  mkdirSync(path.join(dir, 'out'));
  const target = path.join(dir, 'out', 'final');
  const { handle, fileId } = await createExclusive(target, 0o600, false);
  await handle.close();
  const trace = path.join(dir, 'trace');
  // strace: apt-get install strace (.ci/run does).
  await concatenateInto(target, fileId, sources.map((s) => s.file), ['strace', '-f', '-qq', '-e', 'trace=copy_file_range,read,write', '-o', trace, 'cat']);
  expect(readFileSync(target).equals(Buffer.concat(sources.map((s) => s.data)))).toBe(true);
  const calls = readFileSync(trace, 'utf8').split('\n');
  const copied = calls.filter((l) => /copy_file_range\(/.test(l)).reduce((n, l) => n + Number(/= (\d+)$/.exec(l)?.[1] ?? 0), 0);
  expect(copied).toBe(4 << 20);
  // No data went through read/write buffers of cat either (only its start-up reads).
  const moved = calls.filter((l) => /^\d+ +(read|write)\(/.test(l)).reduce((n, l) => n + Number(/= (\d+)$/.exec(l)?.[1] ?? 0), 0);
  expect(moved).toBeLessThan(64 * 1024);
});

test('expiration: an upload idle for upload_session_timeout goes with its data', async () => {
  const short = await startTusGateway('    upload_session_timeout 1s;', { sweep: false });
  try {
    const res = await request(short, 'POST', '/upload', [[...TUS], ['Upload-Length', '10']]);
    const url = res.headers.location!;
    const id = url.split('/').pop()!;
    expect(Date.parse(res.headers['upload-expires']!) - Date.now()).toBeLessThanOrEqual(1000);
    expect(existsSync(dataPath(short, id))).toBe(true);
    await sleep(1100);
    expect((await request(short, 'HEAD', url, [[...TUS]])).status).toBe(404);
    await short.gateway.sweepExpired();
    expect(existsSync(dataPath(short, id))).toBe(false);
  } finally {
    await short.close();
  }
});

test('a hand-off that fails (backend unreachable) keeps the upload: HEAD reports the last byte missing, sending it again hands off once', async () => {
  const data = randomFile(1200, 13);
  const { url } = await create(data.length, 'retry.bin');
  await gw.backend.stop();
  const failed = await patch(url, 0, data);
  expect(failed.status).toBe(503);
  expect(failed.headers['tus-resumable']).toBe('1.0.0');
  await gw.backend.start(gw.backend.port);
  const head = await request(gw, 'HEAD', url, [[...TUS]]);
  expect(head.headers['upload-offset']).toBe('1199');
  expect((await patch(url, 1199, data.subarray(1199))).status).toBe(200);
  expectHandedOffOnce(gw, 'retry.bin', data);
});

test('upload_tus needs a prefix location (upload URLs are below it)', async () => {
  const { parseConfig } = await import('../../src/config/parse');
  expect(() => parseConfig('location = /x {\n    upload_pass http://127.0.0.1:9;\n    upload_tus on;\n}\n', 't.conf')).toThrow('"upload_tus" needs a prefix location (upload URLs are /x/<id>), not "location = /x"');
  expect(parseConfig('location /x {\n    upload_pass http://127.0.0.1:9;\n    upload_tus on;\n}\n', 't.conf').locations[0]!.tus).toBe(true);
});
