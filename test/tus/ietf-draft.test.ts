/**
 * The IETF draft "Resumable Uploads for HTTP" (interop version 8) from raw requests, following
 * the draft's examples: creation with the `104 Upload Resumption Supported` interim answer,
 * offset retrieval, appends, a wrong offset, cancellation, completion by an append of no bytes;
 * on the same sessions as segments (one hand-off with the module's fields).
 */
import * as http from 'node:http';
import { existsSync } from 'node:fs';
import { dataPath, query, type TestGateway } from '../helpers/gateway';
import { randomFile } from '../helpers/segments';
import { expectHandedOffOnce, request, startTusGateway } from '../helpers/tus';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTusGateway();
});
afterAll(() => gw.close());

const V8 = ['Upload-Draft-Interop-Version', '8'] as [string, string];
const PARTIAL = ['Content-Type', 'application/partial-upload'] as [string, string];

interface Interim {
  status: number;
  headers: Record<string, string>;
}

/**
 * A creation request with node:http: the interim answers it gets, then either the final answer
 * or, with `cutAfter`, the connection cut once that many body bytes are sent after the 104.
 */
function createUpload(headers: Record<string, string>, body: Buffer, cutAfter?: number): Promise<{ interims: Interim[]; final: { status: number; headers: http.IncomingHttpHeaders; body: string } | null }> {
  return new Promise((resolve, reject) => {
    const interims: Interim[] = [];
    const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/upload', headers: { 'Content-Length': String(body.length), ...headers } });
    req.on('information', (info) => {
      interims.push({ status: info.statusCode, headers: info.headers as Record<string, string> });
      if (cutAfter !== undefined) {
        req.write(body.subarray(0, cutAfter), () => setTimeout(() => {
          req.destroy();
          resolve({ interims, final: null });
        }, 100));
      } else {
        req.end(body);
      }
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('latin1').on('data', (c: string) => (text += c)).on('end', () => resolve({ interims, final: { status: res.statusCode!, headers: res.headers, body: text } }));
    });
    req.on('error', (err) => (cutAfter !== undefined ? undefined : reject(err)));
    // The head goes out alone: the body waits for the 104 (versions other than 8 get none: at once).
    if (headers['Upload-Draft-Interop-Version'] !== '8') req.end(body);
    else req.flushHeaders();
  });
}

test('example 1: the whole file in one request; the 104 brings the upload URL before the body; the cut request is resumed with HEAD and an append', async () => {
  const data = randomFile(200_000, 21);
  const started = await createUpload({ 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Disposition': 'inline; filename="example one.bin"' }, data, 50_000);
  expect(started.final).toBeNull();
  expect(started.interims).toHaveLength(1);
  const interim = started.interims[0]!;
  expect(interim.status).toBe(104);
  expect(interim.headers['upload-draft-interop-version']).toBe('8');
  expect(interim.headers['upload-limit']).toBe('max-append-size=104857600, max-age=86400');
  const url = interim.headers.location!;
  expect(url).toMatch(/^\/upload\/[A-Za-z0-9_-]{32}$/);
  const head = await request(gw, 'HEAD', url, [V8]);
  expect(head.status).toBe(204);
  // The cut request recorded nothing (the gateway keeps only whole requests): the client backtracks.
  expect(head.headers).toMatchObject({ 'upload-offset': '0', 'upload-complete': '?0', 'upload-length': '200000', 'cache-control': 'no-store' });
  expect(head.headers['upload-limit']).toMatch(/^max-append-size=104857600, max-age=\d+$/);
  const done = await request(gw, 'PATCH', url, [V8, PARTIAL, ['Upload-Offset', '0'], ['Upload-Complete', '?1']], data);
  expect(done.status).toBe(200);
  expect(done.body.toString()).toBe('backend 200\n');
  expect(done.headers['upload-complete']).toBe('?1');
  expectHandedOffOnce(gw, 'example one.bin', data);
  expect((await request(gw, 'HEAD', url, [V8])).headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': '200000' });
});

test('example 2: an upload as a series of parts, a wrong offset (409 with the right one), offset retrieval, the last part completes it', async () => {
  const data = randomFile(90_000, 22);
  const first = await createUpload({ 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0' }, data.subarray(0, 30_000));
  expect(first.interims.map((i) => i.status)).toEqual([104]);
  expect(first.final).toMatchObject({ status: 201, headers: { 'upload-complete': '?0', 'upload-offset': '30000' } });
  const url = first.final!.headers.location!;
  expect(url).toBe(first.interims[0]!.headers.location);
  expect(first.final!.headers['upload-length']).toBeUndefined();
  const second = await request(gw, 'PATCH', url, [V8, PARTIAL, ['Upload-Offset', '30000'], ['Upload-Complete', '?0']], data.subarray(30_000, 60_000));
  expect(second.status).toBe(204);
  expect(second.headers['upload-complete']).toBe('?0');
  const wrong = await request(gw, 'PATCH', url, [V8, PARTIAL, ['Upload-Offset', '70000'], ['Upload-Complete', '?0']], data.subarray(70_000, 80_000));
  expect(wrong.status).toBe(409);
  expect(wrong.headers).toMatchObject({ 'upload-offset': '60000', 'upload-complete': '?0' });
  expect((await request(gw, 'HEAD', url, [V8])).headers['upload-offset']).toBe('60000');
  expect((await request(gw, 'PATCH', url, [V8, ['Content-Type', 'application/octet-stream'], ['Upload-Offset', '60000'], ['Upload-Complete', '?1']], data.subarray(60_000))).status).toBe(415);
  const last = await request(gw, 'PATCH', url, [V8, PARTIAL, ['Upload-Offset', '60000'], ['Upload-Complete', '?1']], data.subarray(60_000));
  expect(last.status).toBe(200);
  expect(last.headers['upload-complete']).toBe('?1');
  expectHandedOffOnce(gw, url.split('/').pop()!, data);
  // The same session as segments: the status query reports it complete.
  expect((await query(gw, url.split('/').pop()!)).headers['x-upload-state']).toBe('complete');
});

test('cancellation: DELETE removes the upload and its data', async () => {
  const created = await createUpload({ 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0', 'Upload-Length': '1000' }, randomFile(100, 23));
  const url = created.final!.headers.location!;
  const id = url.split('/').pop()!;
  expect(existsSync(dataPath(gw, id))).toBe(true);
  expect((await request(gw, 'DELETE', url, [V8])).status).toBe(204);
  expect(existsSync(dataPath(gw, id))).toBe(false);
  expect((await request(gw, 'HEAD', url, [V8])).status).toBe(404);
});

test('a hand-off that failed is finished by an append of no bytes with Upload-Complete: ?1', async () => {
  const data = randomFile(5000, 24);
  await gw.backend.stop();
  const failed = await createUpload({ 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Content-Disposition': 'inline; filename="late.bin"' }, data);
  await gw.backend.start(gw.backend.port);
  expect(failed.final?.status).toBe(503);
  const url = failed.interims[0]!.headers.location!;
  expect((await request(gw, 'HEAD', url, [V8])).headers).toMatchObject({ 'upload-offset': '5000', 'upload-complete': '?0', 'upload-length': '5000' });
  const done = await request(gw, 'PATCH', url, [V8, PARTIAL, ['Upload-Offset', '5000'], ['Upload-Complete', '?1']], Buffer.alloc(0));
  expect(done.status).toBe(200);
  expect(done.headers['upload-complete']).toBe('?1');
  expectHandedOffOnce(gw, 'late.bin', data);
});

test('interop versions 5 and 6 (tus-js-client\'s draft modes) get no 104; other versions and no version are the module\'s protocol', async () => {
  const six = await createUpload({ 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': '10' }, Buffer.alloc(0));
  expect(six.interims).toEqual([]);
  expect(six.final).toMatchObject({ status: 201, headers: { 'upload-offset': '0' } });
  const seven = await request(gw, 'POST', '/upload', [['Upload-Draft-Interop-Version', '7'], ['Upload-Complete', '?1']], 'x');
  // No Content-Type, no Content-Disposition: the module's raw upload answers.
  expect(seven.status).toBe(400);
  expect(seven.headers['upload-complete']).toBeUndefined();
});
