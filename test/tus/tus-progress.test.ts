/**
 * Upload progress (track_uploads, report_uploads) of tus and draft uploads: the progress id a
 * client sends on its requests names the whole upload, as with segments (the handlers report to
 * the request's UploadObserver); `done` once the backend answered the hand-off.
 */
import { request, startTusGateway, TUS, metadata } from '../helpers/tus';
import { randomFile } from '../helpers/segments';
import type { TestGateway } from '../helpers/gateway';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTusGateway('    track_uploads uploads 30s;', {
    topLevel: 'upload_progress uploads 1m;\nlocation = /progress {\n    upload_progress_json_output;\n    report_uploads uploads;\n}\n',
  });
});
afterAll(() => gw.close());

const probe = async (id: string) => (await request(gw, 'GET', `/progress?X-Progress-ID=${id}`, [])).body.toString();

test('a tus upload reports the whole file: created, each PATCH adds its bytes, done after the hand-off', async () => {
  const data = randomFile(30_000, 41);
  const progressId = 'tus-progress-1';
  const created = await request(gw, 'POST', '/upload', [[...TUS], ['Upload-Length', String(data.length)], ['Upload-Metadata', metadata('p.bin')], ['X-Progress-ID', progressId]]);
  expect(created.status).toBe(201);
  expect(await probe(progressId)).toBe('{ "state" : "uploading", "received" : 0, "size" : 30000 }\r\n');
  const url = created.headers.location!;
  const patch = (from: number, to: number) => request(gw, 'PATCH', url, [[...TUS], ['Content-Type', 'application/offset+octet-stream'], ['Upload-Offset', String(from)], ['X-Progress-ID', progressId]], data.subarray(from, to));
  expect((await patch(0, 10_000)).status).toBe(204);
  expect(await probe(progressId)).toBe('{ "state" : "uploading", "received" : 10000, "size" : 30000 }\r\n');
  expect((await patch(10_000, 30_000)).status).toBe(200);
  expect(await probe(progressId)).toBe('{ "state" : "done" }\r\n');
});

test('a draft upload of one request with its progress id: done once handed off', async () => {
  const data = randomFile(20_000, 42);
  const res = await request(gw, 'POST', '/upload?X-Progress-ID=ietf-progress-1', [['Upload-Draft-Interop-Version', '8'], ['Upload-Complete', '?1']], data);
  expect(res.status).toBe(200);
  expect(await probe('ietf-progress-1')).toBe('{ "state" : "done" }\r\n');
});
