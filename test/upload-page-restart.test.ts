/**
 * The upload page against a real gateway process that is stopped mid-upload and started again:
 * headless Chromium keeps the page, shows "Connection lost. Retrying in N s…", and once the
 * gateway is back the library resumes from what the server holds and finishes; the backend gets
 * the file once, byte-identical.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { launchChromium, type HeadlessChromium } from './helpers/browser';
import { CaptureBackend } from './helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from './helpers/process';
import { inState, pageGatewayConfig, rowState, screenshot, serverHolds, throttleUploads, waitForRow, waitUntilServerHolds } from './helpers/upload-page';

const KB = 1000;

let browser: HeadlessChromium;
let backend: CaptureBackend;
let gateway: GatewayProcess | undefined;
let dir: string;

beforeAll(async () => {
  backend = await new CaptureBackend().start();
  dir = tempDir('upload-page-restart-');
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await backend?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the gateway process stops and restarts mid-upload: the page retries and finishes, byte-identical', async () => {
  const port = await freePort();
  const config = pageGatewayConfig({ port, dir, backend: `http://127.0.0.1:${backend.port}` });
  gateway = await startGateway(config, { port, dir });
  const name = 'field-recording.wav';
  const data = randomBytes(1800 * KB);
  const source = path.join(dir, name);
  writeFileSync(source, data);

  const page = await browser.context.newPage();
  try {
    await page.setViewportSize({ width: 760, height: 400 });
    await throttleUploads(page, 450 * KB);
    await page.goto(`${gateway.url}/?segmentSize=262144&concurrency=2`, { timeout: 10_000 });
    await page.setInputFiles('#picker', source);
    await waitForRow(page, name, `Number(li.dataset.serverReceived) > ${400 * KB}`);
    const session = (await rowState(page, name)).session;
    // Some segments acknowledged, others in flight.
    await waitUntilServerHolds(gateway.url, session, 500 * KB, 15_000);

    // Cut the gateway off: SIGINT (stop at once), connections closed, nothing listens.
    await gateway.stop();
    await waitForRow(page, name, `${inState('retrying')} && /^Connection lost\\. Retrying in \\d+ s…$/.test(li.querySelector('.status').textContent)`, 15_000);
    await screenshot(page, 'retrying');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await rowState(page, name)).state).toBe('retrying');

    gateway = await startGateway(config, { port, dir });
    const held = await serverHolds(gateway.url, session);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(data.length);
    await waitForRow(page, name, inState('done'), 60_000);
    expect(await rowState(page, name)).toMatchObject({ state: 'done', percent: 100, status: 'Done' });
  } finally {
    await page.close();
  }

  const calls = backend.calls.filter((call) => backend.field(call, 'name') === name);
  expect(calls).toHaveLength(1);
  expect(backend.field(calls[0]!, 'size')).toBe(String(data.length));
  expect(readFileSync(backend.field(calls[0]!, 'path')!).equals(data)).toBe(true);
}, 90_000);
