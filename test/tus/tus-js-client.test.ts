/**
 * tus-js-client (from npm, unmodified) in Node against a real gateway: a connection cut
 * mid-upload and resumed from the server's offset, parallel uploads through concatenation,
 * per-request checksums (its public `httpStack` option adds `Upload-Checksum`), a deferred
 * length from a stream, and its IETF draft modes. Each ends with the backend receiving the
 * byte-identical file exactly once.
 */
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { dataPath, type TestGateway } from '../helpers/gateway';
import { randomFile } from '../helpers/segments';
import { checksum, CuttingRelay, expectHandedOffOnce, handOffsOf, request, startTusGateway, TUS } from '../helpers/tus';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTusGateway();
});
afterAll(() => gw.close());

/** Runs one tus-js-client upload to the end; resolves with the upload, rejects with its error. */
function upload(file: Buffer | Readable, options: tus.UploadOptions): Promise<tus.Upload> {
  return new Promise((resolve, reject) => {
    const u: tus.Upload = new tus.Upload(file, {
      retryDelays: [0, 100, 300, 1000],
      ...options,
      onSuccess: () => resolve(u),
      onError: reject,
    });
    u.start();
  });
}

/** The HTTP stack tus-js-client uses, adding `Upload-Checksum` of every PATCH body (tus-js-client has no checksum option of its own). */
class ChecksumStack implements tus.HttpStack {
  sent: string[] = [];
  private readonly inner = new tus.DefaultHttpStack({});
  constructor(private readonly algorithms: Array<'md5' | 'sha1' | 'sha256'>, private corrupt = 0) {}
  getName(): string {
    return 'checksum';
  }
  createRequest(method: string, url: string): tus.HttpRequest {
    const req = this.inner.createRequest(method, url);
    const send = req.send.bind(req);
    req.send = (body: Buffer | null) => {
      if (method === 'PATCH' && body) {
        const algorithm = this.algorithms[this.sent.length % this.algorithms.length]!;
        const bytes = Buffer.from(body);
        req.setHeader('Upload-Checksum', checksum(algorithm, this.corrupt-- > 0 ? Buffer.concat([bytes, Buffer.from('!')]) : bytes));
        this.sent.push(algorithm);
      }
      return send(body);
    };
    return req;
  }
}

test('a connection cut mid-upload: tus-js-client asks the offset and sends only the rest', async () => {
  const data = randomFile(3 << 20, 31);
  const relay = await new CuttingRelay(gw.port, (1 << 20) + 500_000).start();
  try {
    const u = await upload(data, { endpoint: `http://127.0.0.1:${relay.port}/upload`, chunkSize: 1 << 20, metadata: { filename: 'cut.bin', filetype: 'application/octet-stream' } });
    expect(relay.cutsDone).toBe(1);
    expect(u.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${relay.port}/upload/[A-Za-z0-9_-]{32}$`));
    expectHandedOffOnce(gw, 'cut.bin', data);
    // The cut request's chunk went again, nothing else: at most one chunk more than the file (plus heads).
    expect(relay.upBytes).toBeGreaterThan(data.length);
    expect(relay.upBytes).toBeLessThan(data.length + (1 << 20) + 20_000);
  } finally {
    await relay.stop();
  }
});

test('parallel uploads through concatenation: partial uploads in parallel, one final upload handed off once; the partials\' files are gone', async () => {
  const data = randomFile((2 << 20) + 12345, 32);
  const u = await upload(data, { endpoint: `${gw.url}/upload`, parallelUploads: 3, chunkSize: 512 * 1024, metadata: { filename: 'parallel.bin' } });
  expectHandedOffOnce(gw, 'parallel.bin', data);
  const head = await request(gw, 'HEAD', new URL(u.url!).pathname, [[...TUS]]);
  const partials = head.headers['upload-concat']!.replace(/^final;/, '').split(' ');
  expect(partials).toHaveLength(3);
  for (const partial of partials) expect(existsSync(dataPath(gw, partial.split('/').pop()!))).toBe(false);
});

test('checksums: md5, sha1 and sha256 on the PATCHes are verified; a wrong one is 460, nothing is recorded, tus-js-client reports it', async () => {
  const data = randomFile(1_500_000, 33);
  const stack = new ChecksumStack(['md5', 'sha1', 'sha256']);
  await upload(data, { endpoint: `${gw.url}/upload`, chunkSize: 300_000, httpStack: stack, metadata: { filename: 'checked.bin' } });
  expect(stack.sent).toEqual(['md5', 'sha1', 'sha256', 'md5', 'sha1']);
  expectHandedOffOnce(gw, 'checked.bin', data);

  const bad = new ChecksumStack(['sha256'], 1);
  const failed = await upload(data, { endpoint: `${gw.url}/upload`, chunkSize: 300_000, httpStack: bad, metadata: { filename: 'mismatch.bin' } }).catch((err: tus.DetailedError) => err);
  expect((failed as tus.DetailedError).originalResponse?.getStatus()).toBe(460);
  const url = (failed as tus.DetailedError).originalRequest.getURL();
  expect((await request(gw, 'HEAD', new URL(url).pathname, [[...TUS]])).headers['upload-offset']).toBe('0');
  expect(handOffsOf(gw, 'mismatch.bin').calls).toHaveLength(0);
});

test('a deferred length: a stream of unknown size, its length sent with the last PATCH', async () => {
  const data = randomFile(700_000, 34);
  await upload(Readable.from([data.subarray(0, 250_000), data.subarray(250_000)]), { endpoint: `${gw.url}/upload`, uploadLengthDeferred: true, chunkSize: 200_000, metadata: { filename: 'stream.bin' } });
  expectHandedOffOnce(gw, 'stream.bin', data);
});

test.each([['ietf-draft-05'], ['ietf-draft-03']] as const)('tus-js-client\'s %s mode: creation, appends, completion', async (protocol) => {
  const data = randomFile(800_000, protocol === 'ietf-draft-05' ? 35 : 36);
  // The typings of tus-js-client 4.3.1 lack `protocol`; the option is documented and read at run time.
  const u = await upload(data, { endpoint: `${gw.url}/upload`, protocol, chunkSize: 300_000 } as tus.UploadOptions);
  const id = new URL(u.url!).pathname.split('/').pop()!;
  expectHandedOffOnce(gw, id, data);
});
