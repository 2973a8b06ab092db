/**
 * A real browser: headless Chromium (Debian `chromium`, driven by playwright-core with
 * `executablePath`) loads an HTML page, fills a text field, picks three files from disk for an
 * `<input type=file multiple>` and submits the form to the gateway. The backend must receive the
 * module's fields (§4.4–§4.6, as §11.3) with correct hashes, and the stored files must be the
 * originals. A missing Chromium fails the test with an install hint (never skipped).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Page } from 'playwright-core';
import { launchChromium, type HeadlessChromium } from './helpers/browser';
import { startTestGateway, type BackendCall, type TestGateway } from './helpers/gateway';
import { REPO_ROOT, tempDir } from './helpers/process';

const LOCATION = `
    upload_pass http://__BACKEND__;
    upload_store __STORE__ 1;
    upload_state_store __STATE__;
    upload_tame_arrays on;
    upload_set_form_field "$upload_field_name.name" "$upload_file_name";
    upload_set_form_field "$upload_field_name.content_type" "$upload_content_type";
    upload_set_form_field "$upload_field_name.path" "$upload_tmp_path";
    upload_aggregate_form_field "$upload_field_name.md5" "$upload_file_md5";
    upload_aggregate_form_field "$upload_field_name.sha256" "$upload_file_sha256";
    upload_aggregate_form_field "$upload_field_name.crc32" "$upload_file_crc32";
    upload_aggregate_form_field "$upload_field_name.size" "$upload_file_size";
    upload_pass_form_field "^(submit|description)$";
    upload_cleanup 500;
`;

/** Screenshots land here (gitignored), for a person to look at. */
const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results', 'browser-form');

const DESCRIPTION = 'Holiday pictures — straße & café';

interface PickedFile {
  name: string;
  path: string;
  data: Buffer;
  contentType: string;
}

let gw: TestGateway;
let pageServer: http.Server;
let pageUrl: string;
let browser: HeadlessChromium;
let filesDir: string;
let files: PickedFile[];

function formPage(action: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Upload form</title></head>
<body>
  <h1>Upload through the gateway</h1>
  <form method="post" enctype="multipart/form-data" action="${action}">
    <p><label>Description <input type="text" name="description" id="description" size="40"></label></p>
    <input type="hidden" name="secret" value="must-not-reach-the-backend">
    <p><label>Files <input type="file" name="files[]" id="files" multiple></label></p>
    <p><button type="submit" name="submit" value="Upload" id="submit">Upload</button></p>
  </form>
</body>
</html>
`;
}

/** The client's fields of one hand-off, decoded from latin1 byte strings to bytes. */
function bytesOf(value: string): Buffer {
  return Buffer.from(value, 'latin1');
}

function crc32Hex(data: Buffer): string {
  return (zlib.crc32(data) >>> 0).toString(16).padStart(8, '0');
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name), fullPage: true });
}

beforeAll(async () => {
  gw = await startTestGateway({ locationBody: LOCATION });

  const html = formPage(`${gw.url}/upload`);
  pageServer = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;

  // Real files on disk, picked by path as a person would pick them (Chromium reads them itself).
  filesDir = tempDir('browser-files-');
  files = [
    { name: 'random.bin', data: randomBytes(2 * 1024 * 1024 + 123), contentType: 'application/octet-stream' },
    { name: 'naïve résumé.txt', data: Buffer.from('Ünïcödé text\r\nsecond line — ✓\n', 'utf8'), contentType: 'text/plain' },
    { name: 'empty.txt', data: Buffer.alloc(0), contentType: 'text/plain' },
  ].map((f) => {
    const file = { ...f, path: path.join(filesDir, f.name) };
    writeFileSync(file.path, file.data);
    return file;
  });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });

  // Throws (failing the test) when Chromium is not installed.
  browser = await launchChromium();
}, 20_000);

// Runs after a failed beforeAll too.
afterAll(async () => {
  await browser?.close();
  if (pageServer) {
    await new Promise<void>((resolve) => {
      pageServer.close(() => resolve());
      pageServer.closeAllConnections();
    });
  }
  await gw?.close();
  if (filesDir) rmSync(filesDir, { recursive: true, force: true });
  if (gw) rmSync(gw.dir, { recursive: true, force: true });
});

describe('an HTML form submitted by headless Chromium', () => {
  let call: BackendCall;
  let resultText: string;

  test('the browser posts the form through the gateway and shows the relayed backend answer', async () => {
    const page = await browser.context.newPage();
    try {
      await page.goto(pageUrl, { timeout: 10_000 });
      await page.fill('#description', DESCRIPTION);
      await page.setInputFiles('#files', files.map((f) => f.path));
      // (No DOM typings in this project: the input is typed structurally.)
      const picked = await page.$eval('#files', (el) => Array.from((el as unknown as { files: ArrayLike<{ name: string }> }).files, (f) => f.name));
      expect(picked).toEqual(files.map((f) => f.name));
      await screenshot(page, '1-form.png');

      const response = page.waitForResponse((r) => r.url() === `${gw.url}/upload` && r.request().method() === 'POST', { timeout: 15_000 });
      await Promise.all([
        page.waitForURL(`${gw.url}/upload`, { waitUntil: 'load', timeout: 15_000 }),
        page.click('#submit'),
      ]);
      expect((await response).status()).toBe(200);
      resultText = await page.locator('body').innerText();
      await screenshot(page, '2-result.png');
    } finally {
      await page.close();
    }
    expect(resultText.trim()).toBe('backend 200');
    expect(gw.backend.calls).toHaveLength(1);
    call = gw.backend.calls[0];
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/upload');
  }, 30_000);

  test('the backend receives the module fields in body order, client fields filtered', () => {
    expect(call).toBeDefined();
    const perFile = ['files.name', 'files.content_type', 'files.path', 'files.md5', 'files.sha256', 'files.crc32', 'files.size'];
    expect(call.fields.map(([name]) => name)).toEqual(['description', ...files.flatMap(() => perFile), 'submit']);
    // The passed fields' bytes are Chromium's UTF-8, copied verbatim; `secret` is dropped.
    expect(bytesOf(call.fields[0][1]).toString('utf8')).toBe(DESCRIPTION);
    expect(call.fields[call.fields.length - 1][1]).toBe('Upload');
    expect(call.fields.some(([name]) => name === 'secret')).toBe(false);
    expect(call.body.includes('must-not-reach-the-backend')).toBe(false);
    // The generated form keeps the browser's Content-Type (and so its boundary).
    const contentType = call.rawHeaders[call.rawHeaders.findIndex((h) => h.toLowerCase() === 'content-type') + 1];
    expect(contentType).toMatch(/^multipart\/form-data; boundary=----WebKitFormBoundary/);
  });

  test('each file arrives with the name Chromium sent, correct digests and size, and is stored byte for byte', () => {
    expect(call).toBeDefined();
    files.forEach((file, i) => {
      const fields = call.fields.slice(1 + i * 7, 1 + (i + 1) * 7);
      const value = (name: string) => {
        const found = fields.find(([n]) => n === `files.${name}`);
        if (!found) throw new Error(`file ${i + 1} (${file.name}): no files.${name} among ${fields.map(([n]) => n).join(', ')}`);
        return found[1];
      };
      // The file name: the UTF-8 bytes exactly as Chromium sent them.
      expect(bytesOf(value('name')).toString('utf8')).toBe(file.name);
      expect(value('content_type')).toBe(file.contentType);
      expect(value('md5')).toBe(createHash('md5').update(file.data).digest('hex'));
      expect(value('sha256')).toBe(createHash('sha256').update(file.data).digest('hex'));
      expect(value('crc32')).toBe(crc32Hex(file.data));
      expect(value('size')).toBe(String(file.data.length));
      const stored = value('path');
      expect(path.dirname(path.dirname(stored))).toBe(gw.store);
      expect(path.basename(stored)).toMatch(/^\d{10}$/);
      expect(readFileSync(stored).equals(file.data)).toBe(true);
    });
  });
});
