/**
 * CORS for pages on another origin, against a real gateway process: preflights of allowed
 * origins answered with the protocol's methods and headers, answers (errors too) readable with
 * the protocol's response headers exposed; other origins and requests without `Origin` get the
 * module's answers unchanged (OPTIONS → 200, empty). Then for real: a page in headless Chromium
 * (Debian `chromium`) on another origin uploads segments and reads `Range` and `X-Upload-State`,
 * and the same page cannot use a location without CORS.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CaptureBackend, httpRequest, rawRequest, segmentRequest, type RawResponse } from '../helpers/gateway';
import { launchChromium } from '../helpers/browser';
import { startOpsGateway, type OpsGateway } from './helpers';

const APP = 'http://app.example';
let backend: CaptureBackend;
let gw: OpsGateway;
let page: http.Server;
let pageOrigin: string;

beforeAll(async () => {
  backend = await new CaptureBackend().start();
  page = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>app</title>'));
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  const location = (path: string, extra: string, store: string, state: string) =>
    `location ${path} {\n  upload_pass http://127.0.0.1:${backend.port};\n  upload_resumable on;\n  upload_store ${store} 1;\n  upload_state_store ${state};\n  ${extra}\n}\n`;
  gw = await startOpsGateway(({ store, state }) =>
    location('/upload', `cors_allow_origin ${APP} ${pageOrigin};\n  cors_allow_headers Authorization;\n  cors_expose_headers X-Capture-Id;`, store, state) +
    location('/plain', '', store, state),
  );
});

afterAll(async () => {
  await gw?.stop();
  await backend?.stop();
  await new Promise<void>((resolve) => page?.close(() => resolve()));
});

const preflight = (path: string, origin: string | null) =>
  rawRequest(gw.port, httpRequest('OPTIONS', path, [
    ...(origin ? ([['Origin', origin]] as Array<[string, string]>) : []),
    ['Access-Control-Request-Method', 'POST'],
    ['Access-Control-Request-Headers', 'content-type,content-disposition,session-id,x-content-range,authorization'],
  ]));

/** Headers of an answer but the date. */
function headersOf(res: RawResponse): Array<[string, string]> {
  return res.headerList.filter(([name]) => name.toLowerCase() !== 'date');
}

test('a preflight of an allowed origin: 204 with the protocol\'s methods and headers', async () => {
  const res = await preflight('/upload', APP);
  expect(res.status).toBe(204);
  expect(res.headers['access-control-allow-origin']).toBe(APP);
  expect(res.headers['access-control-allow-methods']).toBe('POST, GET, HEAD, OPTIONS');
  const allowed = res.headers['access-control-allow-headers'].toLowerCase().split(/,\s*/);
  expect(allowed).toEqual(expect.arrayContaining(['content-type', 'content-disposition', 'session-id', 'x-content-range', 'content-range', 'x-session-id', 'authorization']));
  expect(res.headers['access-control-max-age']).toBe('600');
  expect(res.headers.vary).toBe('Access-Control-Request-Method, Access-Control-Request-Headers, Origin');
  expect(res.body.length).toBe(0);
});

test('another origin, no Origin, or no CORS configured: OPTIONS keeps the module\'s answer', async () => {
  const plain = await rawRequest(gw.port, httpRequest('OPTIONS', '/plain', []));
  expect(plain.status).toBe(200);
  expect(plain.body.length).toBe(0);
  for (const res of [await preflight('/upload', 'http://evil.example'), await preflight('/upload', null), await rawRequest(gw.port, httpRequest('OPTIONS', '/upload', []))]) {
    expect(res.status).toBe(200);
    expect(headersOf(res)).toEqual(headersOf(plain));
    expect(res.body.length).toBe(0);
  }
});

test('answers to an allowed origin, errors too, carry the origin and expose the protocol\'s headers', async () => {
  const first = await rawRequest(gw.port, segmentRequest('cors-1', 0, 4, 10, 'hello', [['Origin', APP]]));
  expect(first.status).toBe(201);
  expect(first.headers['access-control-allow-origin']).toBe(APP);
  expect(first.headers['access-control-expose-headers']).toBe('Range, X-Upload-State, X-Upload-Total, X-Upload-Backend-Status, Retry-After, X-Capture-Id');
  expect(first.headers.vary).toBe('Origin');
  const conflict = await rawRequest(gw.port, segmentRequest('cors-1', 5, 9, 11, 'world', [['Origin', APP]]));
  expect(conflict.status).toBe(409);
  expect(conflict.headers['access-control-allow-origin']).toBe(APP);
  const other = await rawRequest(gw.port, segmentRequest('cors-1', 5, 9, 10, 'world', [['Origin', 'http://evil.example']]));
  expect(other.status).toBe(200);
  expect(other.headers['access-control-allow-origin']).toBeUndefined();
});

test('in Chromium: a page on another origin uploads and reads the ranges; a location without CORS is closed to it', async () => {
  const browser = await launchChromium();
  try {
    const tab = await browser.context.newPage();
    await tab.goto(pageOrigin);
    const gateway = `http://localhost:${gw.port}`;
    const result = await tab.evaluate(async (base) => {
      const segment = (path: string, start: number, end: number, text: string) =>
        fetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="page.txt"', 'Session-ID': 'cors-page', 'X-Content-Range': `bytes ${start}-${end}/12`, Authorization: 'Bearer x' },
          body: text,
        });
      const first = await segment('/upload', 0, 4, 'hello');
      const status = await fetch(`${base}/upload`, { headers: { 'Session-ID': 'cors-page' } });
      const last = await segment('/upload', 5, 11, ' world!');
      let closed = '';
      try {
        await segment('/plain', 0, 4, 'hello');
      } catch (err) {
        closed = String(err);
      }
      return {
        first: [first.status, first.headers.get('Range')],
        status: [status.status, status.headers.get('X-Upload-State'), status.headers.get('X-Upload-Total')],
        last: [last.status, last.headers.get('X-Capture-Id'), await last.text()],
        closed,
      };
    }, gateway);
    expect(result.first).toEqual([201, '0-4/12']);
    expect(result.status).toEqual([200, 'incomplete', '12']);
    expect(result.last).toEqual([200, String(backend.calls.length), 'backend 200\n']);
    expect(result.closed).toMatch(/TypeError: Failed to fetch/);
  } finally {
    await browser.close();
  }
}, 60_000);
