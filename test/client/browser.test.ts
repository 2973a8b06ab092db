/**
 * The same client in a real browser: headless Chromium (Debian `chromium` via playwright-core)
 * loads a page from the gateway's origin that includes the bundle the gateway serves at
 * `/client.js`, picks a file from disk, uploads it with the global `fileUploader` (XMLHttpRequest,
 * upload progress events), aborts half-way, resumes, and the backend gets the identical file.
 * A missing Chromium fails the test (never skipped).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { launchChromium, type HeadlessChromium } from '../helpers/browser';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { REPO_ROOT, tempDir } from '../helpers/process';
import { coveredBytes, randomFile } from '../helpers/segments';
import type { Progress, UploadStatus } from '../../client/src/node';
import { checkNoByteTwice, CountingProxy, handedOff, loadClient } from './helpers';

const client = loadClient();
const MiB = 1024 * 1024;
/**
 * Segments larger than what the kernel buffers between Chromium and the proxy hold (a few MiB on
 * loopback): a smaller segment is in those buffers at once, and its upload progress jumps to
 * its end instead of coming byte by byte.
 */
const SEGMENT = 16 * MiB;
const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results', 'client-browser');

let gw: TestGateway;
let proxy: CountingProxy;
let browser: HeadlessChromium;
let dir: string;

beforeAll(async () => {
  gw = await startTestGateway();
  // The page, /client.js and /upload all come through this proxy: one origin, a slow uplink.
  proxy = await new CountingProxy(gw.port).start();
  dir = tempDir('client-browser-');
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await proxy?.stop();
  await gw?.close();
  for (const d of [gw?.dir, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Resumable upload</title><script src="/client.js"></script></head>
<body>
  <h1>Resumable upload through the gateway</h1>
  <p><input type="file" id="file"></p>
  <p><progress id="progress" max="100" value="0"></progress> <span id="text"></span></p>
</body>
</html>
`;

interface PageEvent extends Progress {
  t: number;
  run: number;
}

interface PageResult {
  legacyGlobal: string;
  sessionId: string;
  aborted: string | null;
  resumedFrom: UploadStatus;
  done: UploadStatus;
  events: PageEvent[];
  segments: number[];
}

// Runs in the page (plain JavaScript: this project compiles without the DOM library).
const UPLOAD_IN_PAGE = `(async () => {
  const file = document.getElementById('file').files[0];
  const events = [];
  const segments = [];
  const show = (p) => {
    document.getElementById('progress').value = p.percent;
    document.getElementById('text').textContent = p.loaded + ' / ' + p.total + ' bytes';
  };
  const ctl = new AbortController();
  // The original's global function, with options; "pause" once the server holds a third.
  const first = fileUploader(file, ${SEGMENT}, undefined, {
    concurrency: 2,
    checksum: 'sha256',
    signal: ctl.signal,
    onProgress: (p) => {
      events.push({ ...p, t: performance.now(), run: 1 });
      show(p);
    },
  });
  let aborted = null;
  try {
    await first.uploadSegments(await first.fetchStatus(), (s) => {
      segments.push(s.end);
      const held = s.ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
      if (held >= s.total / 3) ctl.abort();
    });
  } catch (e) {
    aborted = e.name;
  }
  const second = UploadGateway.fileUploader(file, ${SEGMENT}, undefined, {
    concurrency: 2,
    checksum: 'md5',
    onProgress: (p) => {
      events.push({ ...p, t: performance.now(), run: 2 });
      show(p);
    },
  });
  const resumedFrom = await second.fetchStatus();
  const done = await second.uploadSegments(resumedFrom, (s) => segments.push(s.end));
  return { legacyGlobal: typeof fileUploader, sessionId: await UploadGateway.sessionIdFor(file), aborted, resumedFrom, done, events, segments };
})()`;

test('headless Chromium uploads with /client.js: progress events, abort, resume, identical file', async () => {
  const data = randomFile(40 * MiB + 5, 41);
  const name = 'café photo.raw';
  const file = path.join(dir, name);
  writeFileSync(file, data);
  proxy.throttleBytesPerSecond = 16 * MiB;

  const page = await browser.context.newPage();
  try {
    await page.route(`${proxy.url.replace('/upload', '')}/page.html`, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE }));
    await page.goto(`http://127.0.0.1:${proxy.port}/page.html`, { timeout: 10_000 });
    await page.setInputFiles('#file', file);
    const result = (await page.evaluate(UPLOAD_IN_PAGE)) as PageResult;
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'done.png') });

    expect(result.legacyGlobal).toBe('function');
    expect(result.aborted).toBe('AbortError');
    // Resumed from the server's ranges, part-way.
    expect(coveredBytes(result.resumedFrom.ranges)).toBeGreaterThan(0);
    expect(result.resumedFrom.completed).toBe(false);
    expect(result.done).toMatchObject({ completed: true, complete: true, total: data.length, response: { status: 200, body: 'backend 200\n' } });
    expect(result.segments[result.segments.length - 1]).toBe(data.length - 1);

    // The file picked in the browser has the id the Node client computes for the same path.
    expect(result.sessionId).toBe(await client.sessionIdFor(file));

    const { calls, data: stored } = handedOff(gw.backend, name);
    expect(calls).toHaveLength(1);
    expect(stored!.equals(data)).toBe(true);
    // No byte the page knew to be on the server went again; only segments cut by the abort (their
    // answers never reached the page) may have gone twice.
    const cut = proxy.segments().filter((r) => !r.acknowledged && r.status !== 503);
    const counts = checkNoByteTwice(proxy.segments(), data.length, cut);
    expect(counts.total).toBeGreaterThanOrEqual(data.length);

    // Progress: byte-level (values between segment boundaries), ≤ 10 events/s, ending at 100 %.
    const boundaries = new Set<number>();
    for (let end = SEGMENT; end < data.length; end += SEGMENT) boundaries.add(end);
    for (const run of [1, 2]) {
      const events = result.events.filter((e) => e.run === run);
      expect(events.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < events.length; i++) expect(events[i]!.t - events[i - 1]!.t).toBeGreaterThanOrEqual(95);
    }
    expect(result.events.some((e) => e.loaded > 0 && e.loaded < data.length && !boundaries.has(e.loaded))).toBe(true);
    expect(result.events.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null)).toBe(true);
    expect(result.events[result.events.length - 1]).toMatchObject({ loaded: data.length, percent: 100 });
  } finally {
    await page.close();
  }
});
