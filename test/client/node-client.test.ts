/**
 * The Node client (the published build) against a real gateway over real sockets: in-order and
 * parallel uploads of random files arrive byte-identical at the backend, from a path, a Buffer
 * and a Node Blob, with D21 checksums; fetchStatus reads the D22 status query and falls back to
 * the module's 2-byte trick on a 405; abort then resume sends no acknowledged byte again;
 * retries follow the policy; progress is byte-level and throttled; the package exports resolve.
 */
import { createHash } from 'node:crypto';
import { openAsBlob, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { REPO_ROOT, run, tempDir } from '../helpers/process';
import { coveredBytes, covers, randomFile, sendSegment } from '../helpers/segments';
import type { Progress, UploadStatus } from '../../client/src/node';
import { checkNoByteTwice, CountingProxy, handedOff, loadClient } from './helpers';

const client = loadClient();
const KiB = 1024;
const MiB = 1024 * KiB;

let gw: TestGateway;
let dir: string;

beforeAll(async () => {
  gw = await startTestGateway();
  dir = tempDir('client-files-');
});

afterAll(async () => {
  await gw?.close();
  for (const d of [gw?.dir, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

function writeFile(name: string, data: Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, data);
  return file;
}

describe('uploads arrive byte-identical at the backend', () => {
  test('in order (concurrency 1) from a file path, one onSegmentComplete per segment', async () => {
    const data = randomFile(MiB + 123, 1);
    const file = writeFile('in-order.bin', data);
    const uploader = client.fileUploader(file, 64 * KiB, undefined, { url: `${gw.url}/upload` });
    const status = await uploader.fetchStatus();
    expect(status).toMatchObject({ completed: false, complete: false, start: 0, end: -1, total: data.length, ranges: [], state: 'incomplete' });
    expect(status.sessionId).toBe(await client.sessionIdFor(file));

    const seen: UploadStatus[] = [];
    const done = await uploader.uploadSegments(status, (s) => seen.push(s));
    expect(seen).toHaveLength(17);
    // In order: the first range grows one segment at a time; only the last one completes.
    expect(seen.slice(0, 16).map((s) => s.end)).toEqual(Array.from({ length: 16 }, (_, i) => (i + 1) * 64 * KiB - 1));
    expect(seen.slice(0, 16).every((s) => !s.completed && !s.complete)).toBe(true);
    expect(done).toMatchObject({ completed: true, complete: true, start: 0, end: data.length - 1, ranges: [{ start: 0, end: data.length - 1 }], state: 'complete' });
    expect(done.response).toMatchObject({ status: 200, body: 'backend 200\n' });
    expect(done.response!.headers['x-capture-id']).toBeDefined();

    const { calls, data: stored } = handedOff(gw.backend, 'in-order.bin');
    expect(calls).toHaveLength(1);
    expect(stored!.equals(data)).toBe(true);
    expect(gw.backend.field(calls[0]!, 'md5')).toBe(createHash('md5').update(data).digest('hex'));
    expect(gw.backend.field(calls[0]!, 'size')).toBe(String(data.length));

    // Asked again: complete, with the backend's status from the status query.
    const again = await client.fileUploader(file, 64 * KiB, undefined, { url: `${gw.url}/upload` }).fetchStatus();
    expect(again).toMatchObject({ completed: true, complete: true, state: 'complete', response: { status: 200, body: null } });
  });

  test('in parallel (concurrency 4) from a Buffer, with sha256 segment checksums', async () => {
    const data = randomFile(3 * MiB + 7, 2);
    const proxy = await new CountingProxy(gw.port).start();
    try {
      const uploader = client.fileUploader(data, 128 * KiB, 'parallel-buffer', { url: proxy.url, concurrency: 4, checksum: 'sha256', name: 'parallel.bin' });
      const done = await uploader.uploadSegments(await uploader.fetchStatus());
      expect(done.complete).toBe(true);
      const { calls, data: stored } = handedOff(gw.backend, 'parallel.bin');
      expect(calls).toHaveLength(1);
      expect(stored!.equals(data)).toBe(true);
      const segments = proxy.segments();
      expect(segments).toHaveLength(25);
      expect(segments.every((r) => r.status === 201 || r.status === 200)).toBe(true);
      expect(segments.reduce((n, r) => n + r.bodyBytes, 0)).toBe(data.length);
    } finally {
      await proxy.stop();
    }
  });

  test('from a Node Blob (fs.openAsBlob), md5 checksums, a non-ASCII file name', async () => {
    const data = randomFile(700 * KiB + 5, 3);
    const file = writeFile('blob-source.bin', data);
    const blob = await openAsBlob(file);
    const uploader = client.fileUploader(blob, 100 * KiB, undefined, { url: `${gw.url}/upload`, concurrency: 3, checksum: 'md5', name: 'Übergrößen résumé.bin', type: 'application/x-test' });
    const done = await uploader.uploadSegments(await uploader.fetchStatus());
    expect(done.response!.status).toBe(200);
    const { calls, data: stored } = handedOff(gw.backend, 'Übergrößen résumé.bin');
    expect(calls).toHaveLength(1);
    expect(stored!.equals(data)).toBe(true);
    expect(gw.backend.field(calls[0]!, 'content_type')).toBe('application/x-test');
  });

  test('a file of one byte and of two bytes', async () => {
    for (const size of [1, 2]) {
      const data = randomFile(size, 10 + size);
      const uploader = client.fileUploader(data, 64 * KiB, `tiny-${size}`, { url: `${gw.url}/upload`, name: `tiny-${size}.bin` });
      const done = await uploader.uploadSegments(await uploader.fetchStatus());
      expect(done).toMatchObject({ completed: true, complete: true, end: size - 1 });
      expect(handedOff(gw.backend, `tiny-${size}.bin`).data!.equals(data)).toBe(true);
    }
    await expect(client.fileUploader(Buffer.alloc(0), 10, 'empty', { url: `${gw.url}/upload` }).fetchStatus()).rejects.toThrow(/empty file/);
  });
});

describe('resuming from what the server says', () => {
  test("fetchStatus reads the D22 ranges; uploadSegments sends only the rest", async () => {
    const data = randomFile(40 * KiB, 4);
    const sid = 'resume-from-server';
    // Another client sent two pieces (out of order).
    expect((await sendSegment(gw.port, sid, data, { start: 0, end: 4 * KiB - 1 })).status).toBe(201);
    expect((await sendSegment(gw.port, sid, data, { start: 20 * KiB, end: 30 * KiB - 1 })).status).toBe(201);
    const proxy = await new CountingProxy(gw.port).start();
    try {
      const uploader = client.fileUploader(data, 8 * KiB, sid, { url: proxy.url, name: 'big.bin' });
      const status = await uploader.fetchStatus();
      expect(status).toMatchObject({ completed: false, start: 0, end: 4 * KiB - 1, ranges: [{ start: 0, end: 4 * KiB - 1 }, { start: 20 * KiB, end: 30 * KiB - 1 }] });
      const done = await uploader.uploadSegments(status);
      expect(done.complete).toBe(true);
      const sent = proxy.segments().map((r) => r.range);
      expect(sent).toEqual([
        { start: 4 * KiB, end: 12 * KiB - 1 },
        { start: 12 * KiB, end: 20 * KiB - 1 },
        { start: 30 * KiB, end: 38 * KiB - 1 },
        { start: 38 * KiB, end: 40 * KiB - 1 },
      ]);
      expect(coveredBytes(proxy.acknowledged())).toBe(data.length - 14 * KiB);
    } finally {
      await proxy.stop();
    }
  });

  test('against the module (405 on GET): the first two bytes give the status, the rest follows once', async () => {
    const data = randomFile(50 * KiB + 1, 5);
    const proxy = await new CountingProxy(gw.port).start();
    proxy.rejectStatusQuery = true;
    try {
      const uploader = client.fileUploader(data, 16 * KiB, 'module-fallback', { url: proxy.url, name: 'module.bin' });
      const status = await uploader.fetchStatus();
      expect(status).toMatchObject({ completed: false, start: 0, end: 1, ranges: [{ start: 0, end: 1 }] });
      const done = await uploader.uploadSegments(status);
      expect(done.response).toMatchObject({ status: 200, body: 'backend 200\n' });
      expect(proxy.requests.map((r) => `${r.method} ${r.range ? `${r.range.start}-${r.range.end}` : ''}`.trim())).toEqual([
        'GET',
        'POST 0-1',
        `POST 2-${16 * KiB + 1}`,
        `POST ${16 * KiB + 2}-${32 * KiB + 1}`,
        `POST ${32 * KiB + 2}-${48 * KiB + 1}`,
        `POST ${48 * KiB + 2}-${50 * KiB}`,
      ]);
      expect(handedOff(gw.backend, 'module.bin').data!.equals(data)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  test('a status of the original shape ({ start, end, total }) and the compact range format work', async () => {
    const data = randomFile(30 * KiB, 6);
    const sid = 'legacy-shape';
    expect((await sendSegment(gw.port, sid, data, { start: 0, end: 10 * KiB - 1 })).status).toBe(201);
    const uploader = client.fileUploader(data, 10 * KiB, sid, { url: `${gw.url}/upload`, name: 'legacy-shape.bin' });
    const done = await uploader.uploadSegments({ completed: false, start: 0, end: 10 * KiB - 1, total: data.length });
    expect(done.complete).toBe(true);
    expect(client.parseRangeList('0-5,9-15/24')).toEqual({ ranges: [{ start: 0, end: 5 }, { start: 9, end: 15 }], total: 24 });
  });
});

describe('abort and resume', () => {
  test('abort mid-upload, resume: no acknowledged byte is sent again (counted at the proxy)', async () => {
    const data = randomFile(2 * MiB, 7);
    const proxy = await new CountingProxy(gw.port).start();
    // A slow uplink (4 MiB/s), so the abort lands in the middle of segments.
    proxy.throttleBytesPerSecond = 4 * MiB;
    try {
      const ctl = new AbortController();
      const options = { url: proxy.url, concurrency: 2, name: 'abort-resume.bin' };
      const first = client.fileUploader(data, 128 * KiB, 'abort-resume', {
        ...options,
        signal: ctl.signal,
        onProgress: (p: Progress) => {
          if (p.loaded >= 0.4 * data.length) ctl.abort();
        },
      });
      await expect(first.uploadSegments(await first.fetchStatus())).rejects.toMatchObject({ name: 'AbortError' });
      // The segments in flight when the abort came: their answers never reached the client.
      const cut = proxy.segments().filter((r) => !r.acknowledged);
      expect(cut.length).toBeGreaterThanOrEqual(1);
      expect(cut.some((r) => r.bodyBytes > 0)).toBe(true);

      const second = client.fileUploader(data, 128 * KiB, 'abort-resume', options);
      const status = await second.fetchStatus();
      // The resume point is the server's, and holds at least everything acknowledged.
      expect(covers(status.ranges, proxy.acknowledged())).toBe(true);
      const done = await second.uploadSegments(status);
      expect(done.complete).toBe(true);
      expect(handedOff(gw.backend, 'abort-resume.bin').data!.equals(data)).toBe(true);

      // No byte the client knew to be on the server went again; the only bytes that may have gone
      // twice are those of the segments the abort cut off, which the client never saw acknowledged.
      const counts = checkNoByteTwice(proxy.segments(), data.length, cut);
      expect(counts.total).toBeLessThanOrEqual(data.length + counts.cutBytes + proxy.segments().filter((r) => r.status === 503).reduce((n, r) => n + r.bodyBytes, 0));
      expect(counts.total).toBeGreaterThanOrEqual(data.length);
    } finally {
      await proxy.stop();
    }
  });

  test('an abort before anything was sent rejects at once', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const uploader = client.fileUploader(Buffer.from('abc'), 1, 'aborted-early', { url: `${gw.url}/upload`, signal: ctl.signal });
    await expect(uploader.fetchStatus()).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('retries', () => {
  test('503 with Retry-After is honoured, 429 retried, a damaged body (460) sent again', async () => {
    const data = randomFile(96 * KiB, 8);
    const proxy = await new CountingProxy(gw.port).start();
    proxy.injected.push({ status: 503, headers: { 'Retry-After': '1' } }, { status: 429, headers: {} });
    proxy.corruptBodies = 1;
    const retries: number[] = [];
    try {
      const uploader = client.fileUploader(data, 32 * KiB, 'retries', { url: proxy.url, name: 'retries.bin', checksum: 'md5', retryDelay: 20, onRetry: (r) => retries.push((r.error as { status?: number }).status ?? 0) });
      const started = Date.now();
      const done = await uploader.uploadSegments(await uploader.fetchStatus());
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(done.complete).toBe(true);
      expect(retries).toEqual([503, 429, 460]);
      expect(proxy.segments().map((r) => r.status)).toEqual([503, 429, 460, 201, 201, 200]);
      expect(handedOff(gw.backend, 'retries.bin').data!.equals(data)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  test('4xx is final (no retry); the headers option carries the authorization', async () => {
    const data = randomFile(10 * KiB, 9);
    const proxy = await new CountingProxy(gw.port).start();
    proxy.requireAuthorization = 'Bearer s3cret';
    try {
      const refused = client.fileUploader(data, 4 * KiB, 'auth', { url: proxy.url, name: 'auth.bin' });
      await expect(refused.fetchStatus()).rejects.toMatchObject({ name: 'UploadError', status: 401 });
      expect(proxy.requests).toHaveLength(1);
      const allowed = client.fileUploader(data, 4 * KiB, 'auth', { url: proxy.url, name: 'auth.bin', headers: { Authorization: 'Bearer s3cret' } });
      expect((await allowed.uploadSegments(await allowed.fetchStatus())).complete).toBe(true);
    } finally {
      await proxy.stop();
    }
    // A session holding a file of another size is refused, not overwritten (409, no retry).
    const other = client.fileUploader(randomFile(11 * KiB, 9), 4 * KiB, 'auth', { url: `${gw.url}/upload` });
    await expect(other.fetchStatus()).rejects.toMatchObject({ status: 409 });
  });
});

describe('progress', () => {
  test('byte-level inside a segment, at most 10 events per second, ending at 100 %', async () => {
    const data = randomFile(12 * MiB, 11);
    const events: Array<Progress & { t: number }> = [];
    const acknowledged: number[] = [];
    // A 16 MiB/s uplink: beyond what the kernel's socket buffers take at once, bytes go out over ~0.5 s.
    const proxy = await new CountingProxy(gw.port).start();
    proxy.throttleBytesPerSecond = 16 * MiB;
    const uploader = client.fileUploader(data, 12 * MiB, 'progress-one-segment', {
      url: proxy.url,
      name: 'progress.bin',
      onProgress: (p) => events.push({ ...p, t: Date.now() }),
    });
    const done = await uploader.uploadSegments(await uploader.fetchStatus(), (s) => acknowledged.push(s.end)).finally(() => proxy.stop());
    expect(done.complete).toBe(true);
    expect(acknowledged).toEqual([data.length - 1]);
    // One segment, yet progress moved in between: counted as the socket took the bytes.
    const inside = events.filter((e) => e.loaded > 0 && e.loaded < data.length);
    expect(inside.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.t - events[i - 1]!.t).toBeGreaterThanOrEqual(95);
      expect(events[i]!.loaded).toBeGreaterThanOrEqual(events[i - 1]!.loaded);
    }
    expect(events[events.length - 1]).toMatchObject({ loaded: data.length, total: data.length, percent: 100, etaSeconds: 0 });
    expect(inside.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null && e.etaSeconds > 0)).toBe(true);
  });
});

describe('packaging', () => {
  test('the gateway serves the browser bundle at /client.js', async () => {
    const res = await fetch(`${gw.url}/client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    const text = await res.text();
    expect(text).toBe(readFileSync(path.join(REPO_ROOT, 'dist/client/client.js'), 'utf8'));
    expect(text).toContain('var UploadGateway');
  });

  test('upload-gateway/client resolves for require and import; upload-gateway is still the server', async () => {
    const cjs = await run(process.execPath, ['-e', "const c = require('upload-gateway/client'); const s = require('upload-gateway'); console.log(typeof c.fileUploader, typeof c.sessionIdFor, typeof s.createGateway)"], { cwd: REPO_ROOT });
    expect(cjs.output.trim()).toBe('function function function');
    const esm = await run(process.execPath, ['--input-type=module', '-e', "const c = await import('upload-gateway/client'); console.log(typeof c.fileUploader, typeof c.UploadError)"], { cwd: REPO_ROOT });
    expect(esm.output.trim()).toBe('function function');
  });
});
