/**
 * The real tus clients, unmodified from npm, in headless Chromium (Debian `chromium` through
 * playwright-core) against a real gateway with `upload_tus on`:
 * - the upload page's tus option (tus-js-client's browser build) through a relay that cuts the
 *   connection mid-upload: it resumes from the server's offset;
 * - tus-js-client in the page with parallel uploads (concatenation) and SHA-256 checksums of
 *   every PATCH (computed with WebCrypto in its `httpStack` option);
 * - Uppy (@uppy/core, @uppy/dashboard, @uppy/tus, bundled with esbuild) with pause, resume and a
 *   page reload mid-upload, after which it resumes the same upload.
 * Each ends with the backend receiving the byte-identical file exactly once. A missing Chromium
 * fails the tests (never skipped).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { launchChromium, type HeadlessChromium } from '../helpers/browser';
import { REPO_ROOT, tempDir } from '../helpers/process';
import { dataPath, type TestGateway } from '../helpers/gateway';
import { randomFile } from '../helpers/segments';
import { throttleUploads } from '../helpers/upload-page';
import { CuttingRelay, expectHandedOffOnce, startTusGateway } from '../helpers/tus';

let gw: TestGateway;
let browser: HeadlessChromium;
let filesDir: string;

beforeAll(async () => {
  readFileSync(path.join(REPO_ROOT, 'dist', 'client', 'tus.js')); // built by npm run build (npm test does)
  gw = await startTusGatewayWithPage();
  filesDir = tempDir('tus-browser-files-');
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  if (filesDir) rmSync(filesDir, { recursive: true, force: true });
});

function startTusGatewayWithPage(): Promise<TestGateway> {
  return startTusGateway('', { topLevel: 'upload_demo_page on;' });
}

function file(name: string, data: Buffer): string {
  const p = path.join(filesDir, name);
  writeFileSync(p, data);
  return p;
}

async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { page, errors };
}

test('the upload page\'s tus option: a connection cut mid-upload is resumed from the server\'s offset', async () => {
  const data = randomFile((1 << 20) + 4567, 51);
  const relay = await new CuttingRelay(gw.port, 600_000).start();
  const { page, errors } = await newPage();
  const sent: Array<{ method: string; offset: number }> = [];
  page.on('request', (request) => {
    if (['POST', 'PATCH'].includes(request.method())) sent.push({ method: request.method(), offset: Number(request.headers()['upload-offset'] ?? 0) });
  });
  try {
    await page.goto(`http://127.0.0.1:${relay.port}/?protocol=tus&segmentSize=262144`);
    expect(await page.locator('#protocol-choice').isVisible()).toBe(true);
    await page.setInputFiles('#picker', file('page-tus.bin', data));
    await page.waitForSelector('li.upload[data-state="done"]', { timeout: 30_000 });
    expect(relay.cutsDone).toBe(1);
    expectHandedOffOnce(gw, 'page-tus.bin', data);
    // Resumed, not restarted: one upload created, and the PATCH cut at 600,000 bytes (a later one
    // than the first) sent again from an offset the server holds, never the upload from the start.
    // It is Chromium that re-sends a request cut on a reused connection, or tus-js-client after
    // asking for the offset; not a fixed bound on bytes: an immediate retry may come before the
    // server has finished with the cut PATCH, and is then refused and sent again.
    expect(sent.filter((r) => r.method === 'POST')).toHaveLength(1);
    const patches = sent.filter((r) => r.method === 'PATCH').map((r) => r.offset);
    expect(patches.filter((offset) => offset === 0)).toHaveLength(1);
    expect(errors).toEqual([]);
  } finally {
    await page.close();
    await relay.stop();
  }
});

test('tus-js-client in the page: parallel uploads through concatenation, SHA-256 of every PATCH checked by the server', async () => {
  const data = randomFile((1 << 20) + 999, 52);
  const { page, errors } = await newPage();
  try {
    await page.goto(`${gw.url}/`);
    const result = await page.evaluate(async (base64: string) => {
      const w = globalThis as any;
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const inner = new w.tus.DefaultHttpStack({});
      let checked = 0;
      const httpStack = {
        getName: () => 'checksum',
        createRequest(method: string, url: string) {
          const req = inner.createRequest(method, url);
          const send = req.send.bind(req);
          req.send = async (body: any) => {
            if (method === 'PATCH' && body) {
              const digest = new Uint8Array(await w.crypto.subtle.digest('SHA-256', await body.arrayBuffer()));
              req.setHeader('Upload-Checksum', `sha256 ${btoa(String.fromCharCode(...digest))}`);
              checked++;
            }
            return send(body);
          };
          return req;
        },
      };
      return new Promise<{ url: string; checked: number }>((resolve, reject) => {
        const upload = new w.tus.Upload(new w.Blob([bytes]), {
          endpoint: '/upload', parallelUploads: 2, chunkSize: 200_000, httpStack, retryDelays: [0, 500],
          metadata: { filename: 'browser-parallel.bin' },
          onSuccess: () => resolve({ url: upload.url, checked }), onError: (err: Error) => reject(err.message),
        });
        upload.start();
      });
    }, data.toString('base64'));
    // Two partial uploads of about half the file each, in PATCHes of at most 200 000 bytes.
    expect(result.checked).toBe(2 * Math.ceil(data.length / 2 / 200_000));
    expect(result.url).toMatch(/\/upload\/[A-Za-z0-9_-]{32}$/);
    expectHandedOffOnce(gw, 'browser-parallel.bin', data);
    expect(errors).toEqual([]);
  } finally {
    await page.close();
  }
});

test('Uppy (core, dashboard, tus): pause, resume, a page reload mid-upload; the same upload finishes, handed off once', async () => {
  const bundle = await build({
    stdin: {
      contents: `
        import Uppy from '@uppy/core';
        import Dashboard from '@uppy/dashboard';
        import Tus from '@uppy/tus';
        window.startUppy = () => {
          const uppy = new Uppy({ autoProceed: false })
            .use(Dashboard, { inline: true, target: '#app' })
            .use(Tus, { endpoint: '/upload', chunkSize: 128 * 1024, retryDelays: [0, 500, 1000] });
          window.uppy = uppy;
          return true;
        };`,
      resolveDir: REPO_ROOT,
      loader: 'js',
    },
    bundle: true, write: false, format: 'iife', platform: 'browser', target: ['chrome100'], logLevel: 'warning',
  });
  const data = randomFile(1_500_000, 53);
  const picked = file('uppy.bin', data);
  const { page, errors } = await newPage();
  // The test page comes from the gateway's origin (routed here), so the tus requests are same-origin.
  await page.route(`${gw.url}/uppy-test/**`, (route) => route.request().url().endsWith('.js')
    ? route.fulfill({ contentType: 'application/javascript', body: bundle.outputFiles[0]!.text })
    : route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><div id="app"></div><script src="/uppy-test/uppy.js"></script>' }));
  await throttleUploads(page, 400_000);
  const progress = () => page.evaluate(() => {
    const uppy = (globalThis as any).uppy;
    const f = uppy.getFiles()[0];
    return f ? { id: f.id as string, sent: f.progress.bytesUploaded as number, done: Boolean(f.progress.uploadComplete), paused: Boolean(f.isPaused) } : null;
  });
  const start = async () => {
    await page.goto(`${gw.url}/uppy-test/`);
    await page.evaluate(() => (globalThis as any).startUppy());
    await page.locator('input.uppy-Dashboard-input').first().setInputFiles(picked);
    void page.evaluate(() => (globalThis as any).uppy.upload()).catch(() => undefined);
  };
  try {
    await start();
    await page.waitForFunction(() => ((globalThis as any).uppy.getFiles()[0]?.progress.bytesUploaded ?? 0) > 300_000, undefined, { timeout: 20_000 });
    const id = (await progress())!.id;
    await page.evaluate((fileId) => (globalThis as any).uppy.pauseResume(fileId), id);
    const paused = (await progress())!;
    expect(paused.paused).toBe(true);
    await page.waitForTimeout(800);
    expect((await progress())!.sent).toBeLessThanOrEqual(paused.sent + 128 * 1024);
    await page.evaluate((fileId) => (globalThis as any).uppy.pauseResume(fileId), id);
    await page.waitForFunction(() => ((globalThis as any).uppy.getFiles()[0]?.progress.bytesUploaded ?? 0) > 800_000, undefined, { timeout: 20_000 });
    // The upload's URL, as tus-js-client keeps it for resuming.
    const stored = await page.evaluate(() => {
      const storage = (globalThis as any).localStorage;
      return Object.keys(storage).filter((k) => k.startsWith('tus::tus-uppy-')).map((k) => JSON.parse(storage.getItem(k)).uploadUrl as string);
    });
    expect(stored).toHaveLength(1);
    const uploadId = stored[0]!.split('/').pop()!;
    await page.reload();
    await start();
    await page.waitForFunction(() => Boolean((globalThis as any).uppy.getFiles()[0]?.progress.uploadComplete), undefined, { timeout: 30_000 });
    const call = expectHandedOffOnce(gw, 'uppy.bin', data);
    // The same upload, resumed after the reload (not a new one).
    expect(gw.backend.field(call, 'path')).toBe(dataPath(gw, uploadId));
    expect(errors).toEqual([]);
  } finally {
    await page.close();
  }
}, 90_000);
