/**
 * The request log (`access_log`) and the gateway's own log (`error_log`) of a real gateway process:
 * one JSON line per request with nginx's fields, requests the HTTP layer refuses included;
 * `access_log off` in a location; the error log's level; `SIGUSR1` reopens both files after a
 * rotation (nginx's convention) and no line is lost or written twice.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../helpers/process';
import { httpRequest, rawRequest, segmentRequest } from '../helpers/gateway';
import { send, sleep } from '../helpers/segments';
import { eventually, getFrom, scrape, startOpsGateway, type OpsGateway } from './helpers';

let gw: OpsGateway;
let accessLog: string;
let errorLog: string;

function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
}

beforeAll(async () => {
  const deadPort = await freePort();
  gw = await startOpsGateway(({ dir, store, state }) => {
    accessLog = path.join(dir, 'logs/access.log');
    errorLog = path.join(dir, 'logs/error.log');
    return `
access_log logs/access.log;
error_log logs/error.log warn;
location /upload {
  upload_pass http://127.0.0.1:${deadPort};
  upload_resumable on;
  upload_store ${store} 1;
  upload_state_store ${state};
  proxy_connect_timeout 2s;
}
location = /metrics {
  upload_metrics;
  access_log off;
}
`;
  });
});

afterAll(async () => {
  await gw?.stop();
});

test('one JSON line per request: time, address, method, URI, Session-ID, range, status, bytes, duration, instance', async () => {
  const segment = segmentRequest('log-1', 0, 4, 10, 'hello');
  expect((await send(gw.port, segment.subarray(0, segment.length - 5), Buffer.from('hello'))).status).toBe(201);
  expect((await getFrom(gw.port, '/upload?x=1', '127.0.0.3', [['Session-ID', 'log-1']])).status).toBe(200);
  expect((await getFrom(gw.port, '/nowhere', '127.0.0.1')).status).toBe(404);
  // Refused by the HTTP layer (framing, D24): by the parser before there is a request, and after it.
  const smuggled = await rawRequest(gw.port, 'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  expect(smuggled.status).toBe(400);
  expect((await rawRequest(gw.port, 'GET /upload HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).status).toBe(400);
  // The whole upload: the hand-off to the dead backend fails (503, a warning in the error log).
  const last = segmentRequest('log-1', 5, 9, 10, 'world');
  expect((await send(gw.port, last.subarray(0, last.length - 5), Buffer.from('world'))).status).toBe(503);
  await scrape(gw.port);

  await eventually('six lines', () => lines(accessLog).length === 6);
  await sleep(300);
  const logged = lines(accessLog);
  expect(logged).toHaveLength(6); // not the scrape: access_log off there
  const instance = logged[0].instance;
  expect(instance).toMatch(/^[0-9a-f-]{36}$/);
  for (const line of logged) {
    expect(line.log).toBe('access');
    expect(Date.parse(line.time as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(line.instance).toBe(instance);
    expect(line.duration_ms).toBeGreaterThanOrEqual(0);
  }
  for (const line of logged.filter((l) => l.method !== '')) expect(line.bytes_sent).toBeGreaterThan(0);
  const fields = (line: Record<string, unknown>) => {
    const { time: _t, instance: _i, bytes_sent: _b, duration_ms: _d, log: _l, ...rest } = line;
    return rest;
  };
  expect(fields(logged[0])).toEqual({
    remote_addr: '127.0.0.1', method: 'POST', uri: '/upload', session_id: 'log-1', range: 'bytes 0-4/10', status: 201, body_bytes_received: 5, location: '/upload',
  });
  expect(fields(logged[1])).toEqual({
    remote_addr: '127.0.0.3', method: 'GET', uri: '/upload?x=1', session_id: 'log-1', range: null, status: 200, body_bytes_received: 0, location: '/upload',
  });
  expect(fields(logged[2])).toEqual({
    remote_addr: '127.0.0.1', method: 'GET', uri: '/nowhere', session_id: null, range: null, status: 404, body_bytes_received: 0, location: '', reason: 'no upload location matches /nowhere',
  });
  expect(fields(logged[3])).toEqual({
    remote_addr: '127.0.0.1', method: '', uri: '', session_id: null, range: null, status: 400, body_bytes_received: 0, location: '', reason: 'invalid Transfer-Encoding',
  });
  expect(fields(logged[4])).toMatchObject({ method: 'GET', uri: '/upload', status: 400 });
  expect(fields(logged[5])).toMatchObject({ session_id: 'log-1', range: 'bytes 5-9/10', status: 503, body_bytes_received: 5 });
  expect(String(logged[5].reason)).toContain('the backend is unreachable');

  // error_log at warn: the warning is there, the info lines are not.
  const errors = readFileSync(errorLog, 'utf8');
  expect(errors).toContain('backend unreachable; upload kept for a retry');
  expect(errors).not.toContain('upload gateway listening');
  // Nothing of either log on the process's output.
  expect(gw.output()).not.toContain('"log":"access"');
}, 30_000);

test('SIGUSR1 after a rotation: both files are opened again, no line lost or written twice', async () => {
  const before = lines(accessLog).length;
  renameSync(accessLog, `${accessLog}.1`);
  renameSync(errorLog, `${errorLog}.1`);
  // Still written to the moved file until the signal (nginx's behaviour too).
  expect((await getFrom(gw.port, '/upload', '127.0.0.1', [['Session-ID', 'log-1']])).status).toBe(200);
  await eventually('the moved file got the line', () => lines(`${accessLog}.1`).length === before + 1);
  gw.child.kill('SIGUSR1');
  let sent = 1;
  await eventually('a request logged in the new file', async () => {
    await getFrom(gw.port, '/upload', '127.0.0.1', [['Session-ID', 'log-1']]);
    sent++;
    return lines(accessLog).length > 0;
  });
  await sleep(300);
  expect(lines(`${accessLog}.1`).length + lines(accessLog).length).toBe(before + sent);
  // The error log was reopened too: a new warning goes to the new file.
  const last = segmentRequest('log-1', 5, 9, 10, 'world');
  expect((await send(gw.port, last.subarray(0, last.length - 5), Buffer.from('world'))).status).toBe(503);
  await eventually('the warning in the new error log', () => existsSync(errorLog) && readFileSync(errorLog, 'utf8').includes('backend unreachable'));
  await eventually('its request logged', () => lines(accessLog).some((l) => l.status === 503));
  expect(gw.child.exitCode).toBeNull();
}, 30_000);

test('a client that goes away before its answer is logged with nginx\'s 499', async () => {
  await rawRequest(gw.port, httpRequest('POST', '/upload', [['Content-Type', 'text/plain'], ['Content-Disposition', 'attachment; filename="a"'], ['Session-ID', 'log-2'], ['X-Content-Range', 'bytes 0-9/10'], ['Content-Length', '10']], undefined), { idleMs: 200 });
  await eventually('the aborted request is logged', () => lines(accessLog).some((l) => l.session_id === 'log-2'));
  expect(lines(accessLog).filter((l) => l.session_id === 'log-2')).toEqual([expect.objectContaining({ status: 499, body_bytes_received: 0 })]);
});
