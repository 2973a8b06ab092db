/**
 * The upload page (`upload_demo_page on;`) in a real browser: headless Chromium (Debian
 * `chromium`, playwright-core with executablePath) loads `/` from an in-process gateway with the
 * sample backend, uploads several files picked and dropped over a throttled uplink, pauses and
 * resumes one, shows a server refusal, and after a reload mid-upload finishes the upload from
 * what the server holds. The finished files are byte-identical. Screenshots go to
 * test-results/upload-page/ (and, with UPDATE_SCREENSHOTS=1, to docs/screenshots/ for the README).
 * A missing Chromium fails the test (never skipped).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium, type HeadlessChromium } from './helpers/browser';
import { tempDir } from './helpers/process';
import {
  dropFiles,
  fetchBytes,
  inState,
  row,
  rowState,
  screenshot,
  serverHolds,
  startPageGateway,
  throttleUploads,
  waitForRow,
  waitUntilServerHolds,
  type PageGateway,
} from './helpers/upload-page';

const KB = 1000;

let gw: PageGateway;
let browser: HeadlessChromium;
let filesDir: string;

beforeAll(async () => {
  gw = await startPageGateway();
  filesDir = tempDir('upload-page-files-');
  // Throws (failing the tests) when Chromium is not installed.
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  for (const dir of [gw?.dir, filesDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

function file(name: string, data: Buffer): { name: string; path: string; data: Buffer } {
  const p = path.join(filesDir, name);
  writeFileSync(p, data);
  return { name, path: p, data };
}

async function openPage(bytesPerSecond: number, query = '?segmentSize=262144&concurrency=2'): Promise<Page> {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 760, height: 560 });
  await throttleUploads(page, bytesPerSecond);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  (page as unknown as { pageErrors: string[] }).pageErrors = errors;
  await page.goto(`${gw.url}/${query}`, { timeout: 10_000 });
  return page;
}

/** The finished file, from the link the page shows (served by the sample backend). */
async function expectFinished(page: Page, f: { name: string; data: Buffer }): Promise<void> {
  const state = await rowState(page, f.name);
  expect(state).toMatchObject({ state: 'done', percent: 100, link: `/files/${encodeURIComponent(f.name)}` });
  const served = await fetchBytes(`${gw.url}${state.link}`);
  expect(served.status).toBe(200);
  expect(served.body.equals(f.data)).toBe(true);
  expect(readFileSync(path.join(gw.filesDir, f.name)).equals(f.data)).toBe(true);
}

test('several files picked and dropped, one paused and resumed, one refused; every file byte-identical', async () => {
  const big = file('holiday-video.mp4', randomBytes(1500 * KB));
  const photo = file('photo.jpg', randomBytes(700 * KB));
  const notes = file('notes.txt', Buffer.from('Ünïcödé notes\n'.repeat(1500)));
  const tooBig = file('disk-image.iso', randomBytes(5 * 1024 * 1024 + 1));
  const dropped = { name: 'dropped.pdf', data: randomBytes(300 * KB), type: 'application/pdf' };

  const page = await openPage(700 * KB);
  try {
    expect(await page.title()).toBe('Upload files');
    await page.setInputFiles('#picker', [big.path, photo.path, notes.path, tooBig.path]);
    await dropFiles(page, '#dropzone', [dropped]);

    // Accessible progress bars, one per file.
    await waitForRow(page, big.name, inState('uploading'));
    expect(await rowState(page, big.name)).toMatchObject({ ariaLabel: `Upload progress of ${big.name}`, ariaLive: 'polite' });
    // The server's refusal, with its reason (upload_max_file_size 5m).
    await waitForRow(page, tooBig.name, inState('error'));
    expect((await rowState(page, tooBig.name)).status).toMatch(/^Error: upload total 5242881 exceeds upload_max_file_size \(5242880 bytes\)/);

    // Pause the big one once the server has a fifth of it (its own count, from the event stream)
    // and has acknowledged a segment of it.
    await waitForRow(page, big.name, `Number(li.dataset.serverReceived) > ${300 * KB}`);
    await waitUntilServerHolds(gw.url, (await rowState(page, big.name)).session, 1);
    await row(page, big.name).locator('button.pause').click();
    await waitForRow(page, big.name, inState('paused'));
    const session = (await rowState(page, big.name)).session;
    await new Promise((r) => setTimeout(r, 400));
    const held = await serverHolds(gw.url, session);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(big.data.length);
    await screenshot(page, 'uploading');
    // Paused means paused: nothing more arrives.
    await new Promise((r) => setTimeout(r, 800));
    expect(await serverHolds(gw.url, session)).toBe(held);
    expect((await rowState(page, big.name)).status).toBe('Paused');

    await row(page, big.name).locator('button.resume').click();
    for (const f of [big, photo, notes, dropped]) await waitForRow(page, f.name, inState('done'), 60_000);
    await screenshot(page, 'done');
    for (const f of [big, photo, notes, dropped]) await expectFinished(page, f);
    expect((await rowState(page, tooBig.name)).state).toBe('error');
    expect((page as unknown as { pageErrors: string[] }).pageErrors).toEqual([]);
    // Finished uploads are forgotten; the refused one is kept for another try.
    const saved = JSON.parse((await page.evaluate(() => (globalThis as any).localStorage.getItem('upload-gateway:uploads'))) as string);
    expect(Object.values(saved).map((s) => (s as { name: string }).name)).toEqual([tooBig.name]);
    await row(page, tooBig.name).locator('button.cancel').click();
    expect(await row(page, tooBig.name).count()).toBe(0);
  } finally {
    await page.close();
  }
}, 90_000);

test('a reload mid-upload: the page remembers the session, and the file chosen again finishes from what the server has', async () => {
  const f = file('thesis draft.pdf', randomBytes(1600 * KB));
  const page = await openPage(500 * KB);
  try {
    const sent: number[] = [];
    page.on('request', (request) => {
      const range = /^bytes (\d+)-(\d+)\/\d+$/.exec(request.headers()['x-content-range'] ?? '');
      if (request.method() === 'POST' && range) sent.push(Number(range[2]) - Number(range[1]) + 1);
    });
    await page.setInputFiles('#picker', f.path);
    await waitForRow(page, f.name, `Number(li.dataset.serverReceived) > ${500 * KB}`);
    const session = (await rowState(page, f.name)).session;
    await waitUntilServerHolds(gw.url, session, 400 * KB + 1);

    await page.reload();
    const held = await serverHolds(gw.url, session);
    expect(held).toBeGreaterThan(400 * KB);
    // The row is back, paused, waiting for the file, showing what the server holds.
    await waitForRow(page, f.name, `li.dataset.needsFile === 'true' && Number(li.dataset.serverReceived) >= ${held}`);
    const after = await rowState(page, f.name);
    expect(after).toMatchObject({ state: 'paused', session, needsFile: true });
    expect(after.status).toBe(`Paused — choose ${f.name} again to resume`);
    expect(after.percent).toBeCloseTo((held / f.data.length) * 100, 0);
    await screenshot(page, 'after-reload');

    sent.length = 0;
    await page.setInputFiles('#picker', f.path);
    await waitForRow(page, f.name, inState('done'), 60_000);
    await expectFinished(page, f);
    // Only what the server lacked went out after the reload.
    expect(sent.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(f.data.length - held);
    const saved = JSON.parse((await page.evaluate(() => (globalThis as any).localStorage.getItem('upload-gateway:uploads'))) as string);
    expect(Object.values(saved).map((s) => (s as { name: string }).name)).not.toContain(f.name);
  } finally {
    await page.close();
  }
}, 60_000);
