/**
 * Progress and the upload page behind the front proxy: a real nginx (Debian package) runs the
 * shipped examples/nginx/upload-gateway.conf in front of an in-process gateway (page, progress,
 * sample backend). Headless Chromium loads the page through nginx and uploads; the page's
 * server-side count comes through nginx as a live event stream, the module's polling answers pass
 * byte for byte, and the finished file's link works through nginx.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { launchChromium, type HeadlessChromium } from './helpers/browser';
import { rawRequest, httpRequest } from './helpers/gateway';
import { startNginx, type NginxProcess } from './helpers/nginx';
import { tempDir } from './helpers/process';
import { fetchBytes, inState, rowState, screenshot, startPageGateway, throttleUploads, waitForRow, type PageGateway } from './helpers/upload-page';
import { SseClient } from './progress/helpers';

const KB = 1000;

let gw: PageGateway;
let nginx: NginxProcess;
let browser: HeadlessChromium;
let dir: string;

beforeAll(async () => {
  gw = await startPageGateway();
  // Throws (failing the test) when nginx or Chromium is not installed: never skipped.
  nginx = await startNginx(gw.port);
  browser = await launchChromium();
  dir = tempDir('upload-page-nginx-');
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  await gw?.close();
  for (const d of [gw?.dir, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

test('the page through nginx: live server-side progress (event stream), the polling answer, the finished file', async () => {
  const front = `http://127.0.0.1:${nginx.port}`;
  const name = 'scan.tiff';
  const data = randomBytes(1400 * KB);
  const source = path.join(dir, name);
  writeFileSync(source, data);

  // The module's polling answer through nginx, headers and body as the gateway sent them.
  const starting = await rawRequest(nginx.port, httpRequest('GET', '/progress?X-Progress-ID=nobody', []), { idleMs: 5000 });
  expect(starting.status).toBe(200);
  expect(starting.headers).toMatchObject({ 'content-type': 'application/json', expires: 'Thu, 01 Jan 1970 00:00:01 GMT', 'cache-control': 'no-cache' });
  expect(starting.body.toString()).toBe('{ "state" : "starting" }\r\n');

  const page = await browser.context.newPage();
  let sse: SseClient | undefined;
  try {
    await page.setViewportSize({ width: 760, height: 400 });
    await throttleUploads(page, 500 * KB);
    await page.goto(`${front}/?segmentSize=262144&concurrency=2`, { timeout: 10_000 });
    await page.setInputFiles('#picker', source);
    await waitForRow(page, name, inState('uploading'));
    const session = (await rowState(page, name)).session;
    // A second listener on the same upload, through nginx, recording when each event arrives.
    sse = new SseClient(nginx.port, `/progress?X-Progress-ID=${session}`);
    await waitForRow(page, name, `Number(li.dataset.serverReceived) > ${300 * KB}`);
    await screenshot(page, 'behind-nginx');
    await waitForRow(page, name, inState('done'), 60_000);
    await sse.done;

    const state = await rowState(page, name);
    expect(state).toMatchObject({ state: 'done', link: `/files/${name}` });
    const served = await fetchBytes(`${front}${state.link}`);
    expect(served.status).toBe(200);
    expect(served.body.equals(data)).toBe(true);

    // nginx passed the events on as they happened, not in one piece at the end.
    const events = sse.states;
    const uploading = sse.events.filter((_, i) => events[i]!.state === 'uploading');
    expect(uploading.length).toBeGreaterThanOrEqual(5);
    expect(uploading[uploading.length - 1]!.at - uploading[0]!.at).toBeGreaterThan(1000);
    expect(events[events.length - 1]).toMatchObject({ state: 'done', received: data.length, total: data.length, percent: 100 });
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');

    const done = await rawRequest(nginx.port, httpRequest('GET', `/progress?X-Progress-ID=${session}&callback=ignored`, []), { idleMs: 5000 });
    expect(done.body.toString()).toBe('{ "state" : "done" }\r\n');
  } finally {
    sse?.close();
    await page.close();
  }
}, 60_000);
