/**
 * Graceful stop and reload of a real gateway process, with segments in flight:
 * - SIGTERM: no new connection is accepted, an idle keep-alive connection is closed, the segments
 *   streaming finish (201) and the process exits 0; restarted, it has every acknowledged byte and
 *   the upload completes byte-identical;
 * - SIGQUIT with a segment stalled past `worker_shutdown_timeout`: it gets a retryable 503 (not a
 *   reset), nothing of it is recorded, its retry after the restart completes the upload;
 * - SIGHUP: a new configuration applies to new requests while a segment in flight finishes and a
 *   kept-alive connection goes on; a refused file (or a new `listen`) keeps the running one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { CaptureBackend, httpRequest, rawRequest } from '../helpers/gateway';
import { startGateway } from '../helpers/process';
import { parseRanges, randomFile, sendSegment, statusQuery, type ByteRange } from '../helpers/segments';
import { sendWhileKilling } from '../helpers/retrying-upload';
import { RawConnection } from '../adversarial/helpers';
import { eventually, refused, sample, scrape, startOpsGateway, type OpsGateway } from './helpers';

const MiB = 1024 * 1024;
const SEGMENTS: ByteRange[] = [0, 1, 2, 3].map((i) => ({ start: i * MiB, end: (i + 1) * MiB - 1 }));

let backend: CaptureBackend;

beforeAll(async () => {
  backend = await new CaptureBackend().start();
});

afterAll(async () => {
  await backend?.stop();
});

function config(extra: string) {
  return ({ store, state }: { store: string; state: string }) => `
${extra}
location /upload {
  upload_pass http://127.0.0.1:${backend.port};
  upload_resumable on;
  upload_store ${store} 1;
  upload_state_store ${state};
  upload_set_form_field path "$upload_tmp_path";
  upload_aggregate_form_field size "$upload_file_size";
}
location = /metrics {
  upload_metrics;
}
`;
}

/** Waits until the gateway has admitted `count` segments (they stream now). */
async function admitted(gw: OpsGateway, count: number): Promise<void> {
  await eventually(`${count} segments admitted`, async () => sample(await scrape(gw.port), 'upload_gateway_segments_in_flight') === count);
}

function exited(gw: OpsGateway): Promise<{ code: number | null; signal: string | null }> {
  if (gw.child.exitCode !== null || gw.child.signalCode !== null) return Promise.resolve({ code: gw.child.exitCode, signal: gw.child.signalCode });
  return new Promise((resolve) => gw.child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The same configuration file run again (a restart), on the same port, store and state. */
async function restart(gw: OpsGateway): Promise<OpsGateway> {
  const again = await startGateway(readFileSync(gw.configFile, 'utf8'), { port: gw.port, dir: gw.dir });
  return { ...again, dir: gw.dir, store: gw.store, state: gw.state, configFile: gw.configFile };
}

/** After a restart: the session holds `ranges`; sending `last` completes the upload, byte-identical. */
async function finishAfterRestart(gw: OpsGateway, id: string, file: Buffer, ranges: ByteRange[], last: ByteRange): Promise<OpsGateway> {
  const again = await restart(gw);
  expect(parseRanges((await statusQuery(again.port, id)).headers.range).ranges).toEqual(ranges);
  expect((await sendSegment(again.port, id, file, last)).status).toBe(200);
  await expectComplete(again, id, file);
  return again;
}

async function expectComplete(gw: OpsGateway, id: string, file: Buffer): Promise<void> {
  const status = await statusQuery(gw.port, id);
  expect(status.headers['x-upload-state']).toBe('complete');
  const call = backend.calls[backend.calls.length - 1];
  const dataPath = backend.field(call, 'path')!;
  expect(backend.field(call, 'size')).toBe(String(file.length));
  expect(readFileSync(dataPath).equals(file)).toBe(true);
}

test('SIGTERM: segments in flight finish (201), new connections are refused, idle ones closed; exit 0; nothing lost', async () => {
  let gw = await startOpsGateway(config('worker_shutdown_timeout 20s;'));
  const file = randomFile(4 * MiB, 41);
  const id = 'graceful-1';
  try {
    expect((await sendSegment(gw.port, id, file, SEGMENTS[0])).status).toBe(201);
    const idle = await RawConnection.open(gw.port);
    await idle.write(httpRequest('GET', '/upload', [['Session-ID', id], ['Connection', 'keep-alive']]));
    expect((await idle.waitAnswers(1, 5000)).answers[0].status).toBe(200);

    const gone = exited(gw);
    // Two segments held after 256 KiB while the gateway stops; their bodies go on once it refuses new connections.
    const results = await sendWhileKilling(gw.port, file, id, SEGMENTS.slice(1, 3), async () => {
      await admitted(gw, 2);
      gw.child.kill('SIGTERM');
      await eventually('new connections refused', () => refused(gw.port), 5000);
      expect((await idle.waitClosed(2000)).closed).toBe(true);
    });
    expect(results.map((r) => r.status)).toEqual([201, 201]);
    expect(await gone).toEqual({ code: 0, signal: null });
    gw = await finishAfterRestart(gw, id, file, [{ start: 0, end: 3 * MiB - 1 }], SEGMENTS[3]);
  } finally {
    await gw.stop();
  }
}, 90_000);

test('SIGQUIT, a segment stalled past worker_shutdown_timeout: a retryable 503, nothing of it recorded; its retry completes the upload', async () => {
  let gw = await startOpsGateway(config('worker_shutdown_timeout 1s;'));
  const file = randomFile(4 * MiB, 42);
  const id = 'graceful-2';
  try {
    for (const range of [SEGMENTS[0], SEGMENTS[2], SEGMENTS[3]]) expect((await sendSegment(gw.port, id, file, range)).status).toBe(201);
    const gone = exited(gw);
    let signalled = 0;
    // The segment's body never goes on: the gateway answers it when its grace time is over.
    const [answer] = await sendWhileKilling(gw.port, file, id, [SEGMENTS[1]], async () => {
      await admitted(gw, 1);
      signalled = Date.now();
      gw.child.kill('SIGQUIT');
      await new Promise(() => undefined);
    });
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(1000);
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.body.toString()).toContain('the gateway stopped before this request was received whole');
    expect(await gone).toEqual({ code: 0, signal: null });
    gw = await finishAfterRestart(gw, id, file, [{ start: 0, end: MiB - 1 }, { start: 2 * MiB, end: 4 * MiB - 1 }], SEGMENTS[1]);
  } finally {
    await gw.stop();
  }
}, 90_000);

test('SIGHUP: the new configuration applies without dropping a connection; a refused file keeps the running one', async () => {
  const gw = await startOpsGateway(config('upload_add_header X-Config v1;'));
  const file = randomFile(4 * MiB, 43);
  const id = 'reload-1';
  const text = readFileSync(gw.configFile, 'utf8');
  const version = async (connection?: RawConnection) => {
    if (!connection) return (await rawRequest(gw.port, httpRequest('OPTIONS', '/upload', []))).headers['x-config'];
    const before = connection.received().answers.length;
    await connection.write(httpRequest('OPTIONS', '/upload', [['Connection', 'keep-alive']]));
    return (await connection.waitAnswers(before + 1, 5000)).answers[before].headers['x-config'];
  };
  try {
    const kept = await RawConnection.open(gw.port);
    expect(await version(kept)).toBe('v1');
    expect((await sendSegment(gw.port, id, file, SEGMENTS[0])).status).toBe(201);

    // A segment held after 256 KiB while the configuration changes under it.
    const [held] = await sendWhileKilling(gw.port, file, id, [SEGMENTS[1]], async () => {
      await admitted(gw, 1);
      writeFileSync(gw.configFile, text.replace('X-Config v1', 'X-Config v2'));
      gw.child.kill('SIGHUP');
      await eventually('v2 in effect', async () => (await version()) === 'v2', 10_000);
    });
    expect(held.status).toBe(201);
    expect(await version(kept)).toBe('v2');
    expect(kept.closed).toBe(false);

    // A file with a mistake: refused, the configuration in effect stays (nginx -s reload).
    writeFileSync(gw.configFile, text.replace('X-Config v1', 'X-Config v3').replace('upload_resumable on;', 'upload_resumable maybe;'));
    gw.child.kill('SIGHUP');
    await eventually('the refusal logged', () => gw.output().includes('reload refused'), 10_000);
    expect(gw.output()).toMatch(/gateway-\d+\.conf:\d+: invalid value \\"maybe\\" in \\"upload_resumable\\" directive[^\n]*reload refused/);
    // Moving the listening socket is refused too.
    writeFileSync(gw.configFile, text.replace(`listen 127.0.0.1:${gw.port};`, 'listen 127.0.0.1:1;'));
    gw.child.kill('SIGHUP');
    await eventually('the second refusal logged', () => (gw.output().match(/reload refused/g) ?? []).length === 2, 10_000);
    expect(gw.output()).toContain('a reload keeps the listening socket');
    expect(await version(kept)).toBe('v2');
    expect(gw.child.exitCode).toBeNull();
    const exposition = await scrape(gw.port);
    expect(sample(exposition, 'upload_gateway_config_reloads_total', { result: 'applied' })).toBe(1);
    expect(sample(exposition, 'upload_gateway_config_reloads_total', { result: 'refused' })).toBe(2);
    expect(sample(exposition, 'upload_gateway_config_last_reload_successful')).toBe(0);

    for (const range of SEGMENTS.slice(2)) expect([200, 201]).toContain((await sendSegment(gw.port, id, file, range)).status);
    await expectComplete(gw, id, file);
    kept.destroy();
  } finally {
    await gw.stop();
  }
}, 90_000);
