/**
 * Helpers for the upload page tests (headless Chromium, test/helpers/browser.ts): a gateway with
 * the page, progress and the sample backend; a slow uplink (Chromium's own network throttling);
 * rows of the page by file name; dropping files; screenshots; what the server holds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import pino from 'pino';
import { createGateway, type Gateway } from '../../src/gateway';
import { parseConfig } from '../../src/config/parse';
import { coveredBytes, parseRangeList } from '../../src/protocol/range-set';
import { freePort, REPO_ROOT, tempDir } from './process';

/** Per-run screenshots (gitignored). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results', 'upload-page');
/** The README's screenshots, written only with UPDATE_SCREENSHOTS=1 (then committed). */
export const README_SCREENSHOT_DIR = path.join(REPO_ROOT, 'docs', 'screenshots');

/** The screenshots the README shows. */
export const README_SCREENSHOTS: ReadonlySet<string> = new Set(['uploading', 'retrying', 'after-reload']);

/**
 * Writes `name`.png of the page to test-results/upload-page/, and with UPDATE_SCREENSHOTS=1 the
 * README's ones to docs/screenshots/.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  writeFileSync(path.join(SCREENSHOT_DIR, `${name}.png`), png);
  if (process.env.UPDATE_SCREENSHOTS === '1' && README_SCREENSHOTS.has(name)) {
    mkdirSync(README_SCREENSHOT_DIR, { recursive: true });
    writeFileSync(path.join(README_SCREENSHOT_DIR, `${name}.png`), png);
  }
}

/** The configuration of the page tests: the embedded defaults' shape, with a few test limits. */
export function pageGatewayConfig(options: { port: number; dir: string; backend?: string; extra?: string }): string {
  const backend = options.backend ?? `http://127.0.0.1:${options.port}/_backend/complete`;
  return `listen 127.0.0.1:${options.port};
upload_demo_page on;
upload_progress uploads 1m;

location /upload {
    upload_pass ${backend};
    upload_resumable on;
    upload_store ${path.join(options.dir, 'store')} 1;
    upload_state_store ${path.join(options.dir, 'state')};
    client_max_body_size 100m;
    upload_max_file_size 5m;
    upload_set_form_field name "$upload_file_name";
    upload_set_form_field content_type "$upload_content_type";
    upload_set_form_field path "$upload_tmp_path";
    upload_aggregate_form_field md5 "$upload_file_md5";
    upload_aggregate_form_field size "$upload_file_size";
    upload_cleanup 400 404 499 500-505;
    track_uploads uploads 30s;
    ${options.extra ?? ''}
}

location = /progress {
    upload_progress_json_output;
    report_uploads uploads;
}
`;
}

export interface PageGateway {
  gateway: Gateway;
  port: number;
  url: string;
  dir: string;
  filesDir: string;
  close(): Promise<void>;
}

/** An in-process gateway serving the page, with the built-in sample backend (files in `<dir>/files`). */
export async function startPageGateway(): Promise<PageGateway> {
  const dir = tempDir('upload-page-');
  const port = await freePort();
  const filesDir = path.join(dir, 'files');
  const config = { ...parseConfig(pageGatewayConfig({ port, dir }), path.join(dir, 'gateway.conf')), sampleBackend: { filesDir } };
  const gateway = createGateway(config, { logger: pino({ level: 'silent' }) });
  await gateway.listen();
  return { gateway, port, url: `http://127.0.0.1:${port}`, dir, filesDir, close: () => gateway.close() };
}

/** Chromium's network throttling (DevTools): request bodies leave at most this fast. */
export async function throttleUploads(page: Page, bytesPerSecond: number): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
}

/** The page's row of a file. */
export function row(page: Page, name: string) {
  return page.locator('li.upload').filter({ has: page.locator(`.name:text-is(${JSON.stringify(name)})`) });
}

export interface RowState {
  state: string;
  percent: number;
  status: string;
  server: string;
  serverReceived: number;
  session: string;
  link: string | null;
  needsFile: boolean;
  ariaLabel: string | null;
  ariaLive: string | null;
}

/** What one row shows (plain DOM reads; the project compiles without the DOM library). */
export async function rowState(page: Page, name: string): Promise<RowState> {
  return row(page, name).evaluate((li: any) => ({
    state: li.dataset.state,
    percent: li.querySelector('progress').value,
    status: li.querySelector('.status').textContent,
    server: li.querySelector('.server').textContent,
    serverReceived: Number(li.dataset.serverReceived ?? 0),
    session: li.dataset.session,
    link: li.querySelector('.file-link').hidden ? null : li.querySelector('.file-link').getAttribute('href'),
    needsFile: li.dataset.needsFile === 'true',
    ariaLabel: li.querySelector('progress').getAttribute('aria-label'),
    ariaLive: li.querySelector('progress').getAttribute('aria-live'),
  }));
}

/** Waits until the row of `name` satisfies `check` (a JavaScript predicate on the row element, as text). */
export async function waitForRow(page: Page, name: string, check: string, timeoutMs = 30_000): Promise<void> {
  await page.waitForFunction(
    ([file, test]) => {
      const li = Array.from((globalThis as any).document.querySelectorAll('li.upload')).find((el: any) => el.querySelector('.name').textContent === file);
      return li ? new Function('li', `return (${test});`)(li) : false;
    },
    [name, check] as const,
    { timeout: timeoutMs, polling: 50 },
  );
}

export const inState = (state: string) => `li.dataset.state === ${JSON.stringify(state)}`;

/** Drops files on `selector` as a person dragging them from the desktop would. */
export async function dropFiles(page: Page, selector: string, files: Array<{ name: string; data: Buffer; type: string }>): Promise<void> {
  const dataTransfer = await page.evaluateHandle((list) => {
    const g = globalThis as any;
    const transfer = new g.DataTransfer();
    for (const f of list) {
      const binary = g.atob(f.base64);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      transfer.items.add(new g.File([bytes], f.name, { type: f.type }));
    }
    return transfer;
  }, files.map((f) => ({ name: f.name, type: f.type, base64: f.data.toString('base64') })));
  await page.dispatchEvent(selector, 'dragenter', { dataTransfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
}

/** Bytes the gateway holds of a session (the D22 status query), 0 for an unknown one. */
export function serverHolds(url: string, sessionId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/upload`, { headers: { 'Session-ID': sessionId }, agent: false }, (res) => {
      res.resume();
      if (res.statusCode === 404) return resolve(0);
      const list = parseRangeList(String(res.headers['range'] ?? ''));
      resolve(list ? coveredBytes(list.ranges) : 0);
    });
    req.on('error', reject);
  });
}

/**
 * Waits until the server has acknowledged at least `atLeast` bytes of a session. The page's
 * `serverReceived` counts bytes still in flight too, so a test that needs acknowledged bytes
 * waits here rather than on that count.
 */
export async function waitUntilServerHolds(url: string, sessionId: string, atLeast: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = await serverHolds(url, sessionId);
    if (held >= atLeast) return held;
    if (Date.now() > deadline) throw new Error(`the server holds ${held} bytes of ${sessionId} after ${timeoutMs} ms, expected at least ${atLeast}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET a URL's body. */
export function fetchBytes(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}
