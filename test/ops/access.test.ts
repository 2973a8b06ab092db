/**
 * Access control before any byte is read, against a real gateway process over real sockets:
 * `allow`/`deny` by address and block, IPv4, IPv6 and IPv4-mapped clients of a dual-stack
 * listener, first match wins, inherited as nginx does; `auth_request` against a real auth
 * service (the sub-request's method, headers and empty body; 2xx, 401 with its challenge, 403,
 * anything else 500) and `auth_request_cache` (one round trip per session and credentials, for
 * the time configured; refusals never remembered). A refused segment writes nothing.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CaptureBackend, httpRequest, listFiles, rawRequest, segmentRequest } from '../helpers/gateway';
import { freePort } from '../helpers/process';
import { sleep } from '../helpers/segments';
import { getFrom, sample, scrape, startOpsGateway, type OpsGateway } from './helpers';

describe('allow / deny', () => {
  let backend: CaptureBackend;
  let gw: OpsGateway;

  beforeAll(async () => {
    backend = await new CaptureBackend().start();
    const location = (path: string, rules: string, store: string, state: string) =>
      `location ${path} {\n  upload_pass http://127.0.0.1:${backend.port};\n  upload_resumable on;\n  upload_store ${store} 1;\n  upload_state_store ${state};\n  ${rules}\n}\n`;
    gw = await startOpsGateway(
      ({ store, state }) =>
        `deny 127.0.0.9;\n` +
        location('/upload', 'allow 127.0.0.1;\n  allow ::1;\n  deny 127.0.0.0/8;', store, state) +
        location('/open', '', store, state) +
        location('/v6', 'deny ::1;\n  allow all;', store, state),
      { listen: '[::]' },
    );
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.stop();
  });

  const status = async (path: string, from: string) => (await getFrom(gw.port, path, from, [['Session-ID', 'nobody']])).status;

  test('first match wins, by address and block, for IPv4 (seen as IPv4-mapped IPv6) and IPv6 clients', async () => {
    // 404: the status query of an unknown session, i.e. the request got through.
    expect(await status('/upload', '127.0.0.1')).toBe(404);
    expect(await status('/upload', '::1')).toBe(404);
    expect(await status('/upload', '127.0.0.2')).toBe(403);
    expect(await status('/v6', '::1')).toBe(403);
    expect(await status('/v6', '127.0.0.2')).toBe(404);
  });

  test('a location without rules inherits the top level\'s; what no location serves follows the top level', async () => {
    expect(await status('/open', '127.0.0.9')).toBe(403);
    expect(await status('/open', '127.0.0.2')).toBe(404);
    // /upload has rules of its own: the top level's deny 127.0.0.9 is not among them, but deny 127.0.0.0/8 is.
    expect(await status('/upload', '127.0.0.9')).toBe(403);
    expect((await getFrom(gw.port, '/healthz', '127.0.0.9')).status).toBe(403);
    expect((await getFrom(gw.port, '/healthz', '127.0.0.2')).status).toBe(200);
  });

  test('a refused segment is answered before its body is read: no 100 Continue, nothing stored', async () => {
    const head = httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment; filename="x"'],
      ['X-Content-Range', 'bytes 0-1048575/1048576'], ['Session-ID', 'denied-1'], ['Content-Length', '1048576'], ['Expect', '100-continue'],
    ]);
    const answer = (await rawRequest(gw.port, head, { localAddress: '127.0.0.2' })).raw;
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer.toString('latin1')).not.toContain('100 Continue');
    expect(listFiles(gw.store)).toEqual([]);
    expect(listFiles(gw.state)).toEqual([]);
  });
});

describe('auth_request', () => {
  let backend: CaptureBackend;
  let gw: OpsGateway;
  let auth: http.Server;
  const asked: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: number }> = [];
  const flips = new Set<string>();

  beforeAll(async () => {
    backend = await new CaptureBackend().start();
    auth = http.createServer((req, res) => {
      let body = 0;
      req.on('data', (c: Buffer) => (body += c.length));
      req.on('end', () => {
        asked.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const token = req.headers.authorization ?? '';
        if (token === 'Bearer flip' && !flips.has(String(req.headers['session-id']))) {
          flips.add(String(req.headers['session-id']));
          res.writeHead(403).end();
        } else if (token === 'Bearer good' || token === 'Bearer good2' || token === 'Bearer flip') res.writeHead(204).end();
        else if (token === 'Bearer forbidden') res.writeHead(403).end('no');
        else if (token === 'Bearer broken') res.writeHead(404).end('nothing here');
        else res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="uploads"' }).end('who are you');
      });
    });
    await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve));
    const authPort = (auth.address() as AddressInfo).port;
    const deadPort = await freePort();
    const location = (path: string, extra: string, store: string, state: string) =>
      `location ${path} {\n  upload_pass http://127.0.0.1:${backend.port};\n  upload_resumable on;\n  upload_store ${store} 1;\n  upload_state_store ${state};\n  ${extra}\n}\n`;
    gw = await startOpsGateway(
      ({ store, state }) =>
        location('/upload', 'auth_request /auth;\n  auth_request_cache 1500ms;', store, state) +
        location('/nocache', 'auth_request /auth;', store, state) +
        location('/unreachable', `auth_request http://127.0.0.1:${deadPort}/check;`, store, state) +
        `location = /auth {\n  internal;\n  proxy_pass http://127.0.0.1:${authPort}/check;\n}\n` +
        'location = /metrics {\n  upload_metrics;\n}\n',
    );
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.stop();
    await new Promise<void>((resolve) => auth?.close(() => resolve()));
  });

  function segment(id: string, start: number, end: number, total: number, token: string | null, path = '/upload', extra: Array<[string, string]> = []) {
    const body = Buffer.alloc(end - start + 1, 0x61);
    const headers: Array<[string, string]> = [...(token ? ([['Authorization', token]] as Array<[string, string]>) : []), ...extra];
    return rawRequest(gw.port, segmentRequest(id, start, end, total, body, headers, `${path}?k=v`));
  }

  test('the sub-request: GET to the auth location\'s URI, the client\'s headers, X-Original-*, no body', async () => {
    asked.length = 0;
    expect((await segment('auth-1', 0, 9, 20, 'Bearer good')).status).toBe(201);
    expect(asked).toHaveLength(1);
    const [call] = asked;
    expect(call.method).toBe('GET');
    expect(call.url).toBe('/check');
    expect(call.body).toBe(0);
    expect(call.headers['content-length']).toBeUndefined();
    expect(call.headers).toMatchObject({
      authorization: 'Bearer good', 'session-id': 'auth-1', 'x-content-range': 'bytes 0-9/20',
      'x-original-uri': '/upload?k=v', 'x-original-method': 'POST', 'x-forwarded-for': '127.0.0.1',
    });
  });

  test('401 is relayed with its challenge, 403 relayed, anything else 500; none reads the body', async () => {
    const before = listFiles(gw.store).length;
    const unauthorized = await segment('auth-2', 0, 9, 20, null, '/upload', [['Expect', '100-continue']]);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['www-authenticate']).toBe('Bearer realm="uploads"');
    expect(unauthorized.raw.toString('latin1')).not.toContain('100 Continue');
    expect((await segment('auth-2', 0, 9, 20, 'Bearer forbidden')).status).toBe(403);
    expect((await segment('auth-2', 0, 9, 20, 'Bearer broken')).status).toBe(500);
    expect((await segment('auth-2', 0, 9, 20, 'Bearer good', '/unreachable')).status).toBe(500);
    expect(listFiles(gw.store).length).toBe(before);
    // The session never started: its status query (allowed) knows nothing of it.
    const query = await rawRequest(gw.port, httpRequest('GET', '/upload', [['Session-ID', 'auth-2'], ['Authorization', 'Bearer good']]));
    expect(query.status).toBe(404);
  });

  test('auth_request_cache: one sub-request per session, credentials and client for the time set', async () => {
    asked.length = 0;
    for (const [start, end] of [[0, 3], [4, 7], [8, 11]]) expect((await segment('cache-1', start, end, 16, 'Bearer good')).status).toBe(201);
    expect(asked).toHaveLength(1);
    // Other credentials, another session: asked again.
    expect((await segment('cache-1', 12, 13, 16, 'Bearer good2')).status).toBe(201);
    expect((await segment('cache-2', 0, 1, 4, 'Bearer good')).status).toBe(201);
    expect(asked).toHaveLength(3);
    // Without a cache every segment asks.
    for (const [start, end] of [[0, 1], [2, 3]]) expect((await segment('cache-3', start, end, 8, 'Bearer good', '/nocache')).status).toBe(201);
    expect(asked).toHaveLength(5);
    // Past the time: asked again.
    await sleep(1600);
    expect([200, 201]).toContain((await segment('cache-1', 14, 15, 16, 'Bearer good')).status);
    expect(asked).toHaveLength(6);
    const text = await scrape(gw.port);
    expect(sample(text, 'upload_gateway_auth_requests_total', { source: 'cache', status: '200' })).toBe(2);
  });

  test('a refusal is never remembered: the next request asks again', async () => {
    asked.length = 0;
    expect((await segment('flip-1', 0, 3, 8, 'Bearer flip')).status).toBe(403);
    expect((await segment('flip-1', 0, 3, 8, 'Bearer flip')).status).toBe(201);
    expect(asked).toHaveLength(2);
  });
});
