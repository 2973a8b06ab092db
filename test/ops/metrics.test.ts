/**
 * Prometheus metrics (`upload_metrics`) of a real gateway process: every figure after uploads of
 * each kind (segments, an overlap refused, a completion, a backend that is down, a multipart form,
 * an expired session), exact counts where the test made them; the exposition passes
 * `promtool check metrics` (a real scraper's linter); the location is closed to other addresses.
 * With Redis (a real redis-server): round trips by operation, and failures once Redis is gone.
 */
import { CaptureBackend } from '../helpers/gateway';
import { multipartBody, post } from '../multipart/harness';
import { randomFile, send, sendSegment, sleep, statusQuery } from '../helpers/segments';
import { httpRequest, segmentRequest } from '../helpers/gateway';
import { freePort } from '../helpers/process';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { eventually, getFrom, promtoolCheck, sample, scrape, startOpsGateway, type OpsGateway } from './helpers';

const METRICS_LOCATION = 'location = /metrics {\n  upload_metrics;\n  allow 127.0.0.1;\n  deny all;\n}\n';

describe('metrics of the file state', () => {
  let backend: CaptureBackend;
  let gw: OpsGateway;

  beforeAll(async () => {
    backend = await new CaptureBackend().start();
    backend.delayMs = 300;
    const deadPort = await freePort();
    gw = await startOpsGateway(({ dir, store, state }) => `
location /upload {
  upload_pass http://127.0.0.1:${backend.port};
  upload_resumable on;
  upload_store ${store} 1;
  upload_state_store ${state};
  upload_set_form_field name "$upload_file_name";
  upload_aggregate_form_field size "$upload_file_size";
  upload_session_timeout 2s;
  upload_completed_retention 60s;
}
location /down {
  upload_pass http://127.0.0.1:${deadPort};
  upload_resumable on;
  upload_store ${store} 1;
  upload_state_store ${dir}/state-down;
  proxy_connect_timeout 2s;
}
${METRICS_LOCATION}`);
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.stop();
  });

  test('counters, gauges and histograms say what happened; promtool accepts the exposition', async () => {
    // A: three segments, the last completes the upload (hand-off answered 200).
    const a = Buffer.from('hello world!');
    for (const [start, end, status] of [[0, 4, 201], [9, 11, 201], [5, 8, 200]] as const) {
      expect((await sendSegment(gw.port, 'metrics-a', a, { start, end })).status).toBe(status);
    }
    // B: a segment held half-way while an overlapping one is refused (503, overlap); B stays incomplete.
    const b = randomFile(20, 1);
    let inFlightWhilePaused: number | undefined;
    let overlap = 0;
    const held = sendSegment(gw.port, 'metrics-b', b, { start: 0, end: 9 }, {
      pauseAt: {
        bodyBytes: 4,
        hook: async () => {
          await eventually('the held segment is admitted', async () => (await statusQuery(gw.port, 'metrics-b')).status === 200);
          inFlightWhilePaused = sample(await scrape(gw.port), 'upload_gateway_segments_in_flight');
          overlap = (await sendSegment(gw.port, 'metrics-b', b, { start: 5, end: 12 })).status;
        },
      },
    });
    expect((await held).status).toBe(201);
    expect(inFlightWhilePaused).toBe(1);
    expect(overlap).toBe(503);
    // D: a whole upload whose backend is down: the hand-off fails, the upload is kept (503).
    const d = Buffer.from('down');
    const down = segmentRequest('metrics-d', 0, 3, 4, d, [], '/down');
    expect((await send(gw.port, down.subarray(0, down.length - 4), d)).status).toBe(503);
    // A multipart form (a one-request upload), handed off.
    const form = multipartBody('B0undary', [{ headers: ['Content-Disposition: form-data; name="f"; filename="x.txt"'], data: 'multipart data' }]);
    expect((await post(gw.port, '/upload', 'B0undary', form)).status).toBe(200);
    // B expires (upload_session_timeout 2s; the sweep runs every second).
    await eventually('B expired', async () => sample(await scrape(gw.port), 'upload_gateway_uploads_expired_total') === 1, 10_000);

    const text = await scrape(gw.port);
    const checked = await promtoolCheck(text);
    expect(checked.output).toBe('');
    expect(checked.code).toBe(0);

    const upload = { location: '/upload', method: 'POST' };
    expect(sample(text, 'upload_gateway_requests_total', { ...upload, status: '201' })).toBe(3);
    expect(sample(text, 'upload_gateway_requests_total', { ...upload, status: '200' })).toBe(2);
    expect(sample(text, 'upload_gateway_requests_total', { ...upload, status: '503' })).toBe(1);
    expect(sample(text, 'upload_gateway_requests_total', { location: '/down', method: 'POST', status: '503' })).toBe(1);
    expect(sample(text, 'upload_gateway_requests_total', { location: '= /metrics', method: 'GET', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'upload_gateway_bytes_received_total')).toBe(12 + 10 + 4 + form.length);
    expect(sample(text, 'upload_gateway_segments_acknowledged_total')).toBe(3 + 1 + 1);
    expect(sample(text, 'upload_gateway_uploads_created_total')).toBe(4);
    expect(sample(text, 'upload_gateway_uploads_finished_total')).toBe(2);
    expect(sample(text, 'upload_gateway_uploads_failed_total')).toBe(1);
    expect(sample(text, 'upload_gateway_uploads_expired_total')).toBe(1);
    expect(sample(text, 'upload_gateway_refusals_total', { reason: 'overlap' })).toBe(1);
    expect(sample(text, 'upload_gateway_refusals_total', { reason: 'backend' })).toBe(1);
    expect(sample(text, 'upload_gateway_handoff_duration_seconds_count', { status: '200' })).toBe(2);
    expect(sample(text, 'upload_gateway_handoff_duration_seconds_sum', { status: '200' })).toBeGreaterThanOrEqual(0.6);
    expect(sample(text, 'upload_gateway_handoff_duration_seconds_count', { status: 'failed' })).toBe(1);
    expect(sample(text, 'upload_gateway_segment_duration_seconds_count', { status: '201' })).toBe(3);
    expect(sample(text, 'upload_gateway_segment_duration_seconds_count', { status: '200' })).toBe(1);
    expect(sample(text, 'upload_gateway_segment_duration_seconds_count', { status: '503' })).toBe(1);
    expect(sample(text, 'upload_gateway_segments_in_flight')).toBe(0);
    // D is the one incomplete session left (its own state directory, never swept away).
    await eventually('the sweep counted D', async () => sample(await scrape(gw.port), 'upload_gateway_sessions_open') === 1);
    expect(sample(text, 'upload_gateway_journal_append_duration_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'upload_gateway_fsync_duration_seconds_count', { file: 'journal' })).toBeGreaterThan(0);
    expect(sample(text, 'upload_gateway_fsync_duration_seconds_count', { file: 'data' })).toBeGreaterThan(0);
    expect(sample(text, 'upload_gateway_connections_open')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'upload_gateway_config_last_reload_successful')).toBe(1);
    // Process metrics (prom-client's), without the gauges named against Prometheus's rules.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).not.toContain('nodejs_active_handles_total');
  }, 60_000);

  test('allow/deny closes the location to other addresses (403 before anything is read)', async () => {
    expect((await getFrom(gw.port, '/metrics', '127.0.0.1')).status).toBe(200);
    const denied = await getFrom(gw.port, '/metrics', '127.0.0.2');
    expect(denied.status).toBe(403);
    expect(denied.body.toString()).toBe('access forbidden by rule\n');
    // Other locations keep their own (no) rules.
    expect((await getFrom(gw.port, '/upload', '127.0.0.2', [['Session-ID', 'metrics-a']])).status).toBe(200);
    expect(sample(await scrape(gw.port), 'upload_gateway_requests_total', { location: '= /metrics', method: 'GET', status: '403' })).toBe(1);
  });
});

describe('metrics of the Redis state', () => {
  let redis: RedisProcess;
  let backend: CaptureBackend;
  let gw: OpsGateway;

  beforeAll(async () => {
    redis = await startRedis();
    backend = await new CaptureBackend().start();
    gw = await startOpsGateway(({ store }) => `
upload_state_redis ${redis.url};
location /upload {
  upload_pass http://127.0.0.1:${backend.port};
  upload_resumable on;
  upload_store ${store} 1;
}
${METRICS_LOCATION}`);
  });

  afterAll(async () => {
    await gw?.stop();
    await redis?.stop();
    await backend?.stop();
  });

  test('round trips by operation; Redis gone: failures counted, the segment refused as retryable', async () => {
    const file = randomFile(100, 2);
    expect((await sendSegment(gw.port, 'redis-m', file, { start: 0, end: 49 })).status).toBe(201);
    let text = await scrape(gw.port);
    expect(sample(text, 'upload_gateway_redis_duration_seconds_count', { operation: 'begin' })).toBe(1);
    expect(sample(text, 'upload_gateway_redis_duration_seconds_count', { operation: 'commit' })).toBe(1);
    expect(sample(text, 'upload_gateway_redis_duration_seconds_count', { operation: 'record_file' })).toBe(1);
    expect(sample(text, 'upload_gateway_sessions_open')).toBe(1);

    await redis.stop();
    const refused = await sendSegment(gw.port, 'redis-m', file, { start: 50, end: 99 });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    await sleep(200);
    text = await scrape(gw.port);
    expect(sample(text, 'upload_gateway_redis_errors_total', { operation: 'begin' })).toBe(1);
    expect(sample(text, 'upload_gateway_refusals_total', { reason: 'state' })).toBe(1);
    expect((await promtoolCheck(text)).code).toBe(0);
  }, 90_000);
});

describe('metrics of tus uploads', () => {
  let backend: CaptureBackend;
  let gw: OpsGateway;

  beforeAll(async () => {
    backend = await new CaptureBackend().start();
    gw = await startOpsGateway(({ store, state }) => `
location /files {
  upload_pass http://127.0.0.1:${backend.port};
  upload_tus on;
  upload_store ${store} 1;
  upload_state_store ${state};
  upload_set_form_field name "$upload_file_name";
}
${METRICS_LOCATION}`);
  });

  afterAll(async () => {
    await gw?.stop();
    await backend?.stop();
  });

  test('a creation with data and a PATCH count as an upload created, two segments and an upload finished', async () => {
    const tus: Array<[string, string]> = [['Tus-Resumable', '1.0.0'], ['Content-Type', 'application/offset+octet-stream']];
    const tusRequest = (method: string, target: string, headers: Array<[string, string]>, body: string) => {
      const request = httpRequest(method, target, [...tus, ...headers], body);
      return send(gw.port, request.subarray(0, request.length - body.length), Buffer.from(body));
    };
    const created = await tusRequest('POST', '/files', [['Upload-Length', '10']], 'abcd');
    expect(created.status).toBe(201);
    const patched = await tusRequest('PATCH', String(created.headers['location']), [['Upload-Offset', '4']], 'efghij');
    expect(patched.status).toBe(200); // the backend's answer, relayed
    expect(backend.calls).toHaveLength(1);

    const text = await scrape(gw.port);
    expect(sample(text, 'upload_gateway_uploads_created_total')).toBe(1);
    expect(sample(text, 'upload_gateway_segments_acknowledged_total')).toBe(2);
    expect(sample(text, 'upload_gateway_uploads_finished_total')).toBe(1);
    expect(sample(text, 'upload_gateway_bytes_received_total')).toBe(10);
    expect(sample(text, 'upload_gateway_segments_in_flight')).toBe(0);
  });
});
