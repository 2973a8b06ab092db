/**
 * The compose deployment (docker/docker-compose.yml) run natively: a real nginx with
 * docker/nginx/default.conf balancing two real gateway processes (docker/gateway.conf, state and
 * locks in a real redis-server), the sample backend as its own process, one shared directory as
 * the volume (test/helpers/topology.ts; `npm run topology` starts the same). Uploads go through
 * nginx only. Missing nginx or redis-server fails every test (never a skip).
 *
 * Needs the built gateway (`npm run build`; `npm test` does it in pretest).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { NGINX_SITE, GATEWAY_CONF, VOLUME, finishedFiles, startTopology, type Topology } from './helpers/topology';
import { randomFile, send, statusQuery, type ByteRange, type SimpleResponse } from './helpers/segments';
import { httpRequest, segmentRequest } from './helpers/gateway';
import { segmentsOf, uploadAll as uploadAllTo, uploadKillingAReplica, uploadStoppingAReplica } from './helpers/retrying-upload';
import * as tus from 'tus-js-client';
import { eventually, promtoolCheck, refused, sample, scrape } from './ops/helpers';

const MiB = 1024 * 1024;

let topology: Topology;

beforeAll(async () => {
  topology = await startTopology();
}, 60_000);

afterAll(async () => {
  await topology?.stop();
});

function explain(message: string): string {
  return `${message}\n${topology.output().slice(-6000)}`;
}

/** Uploads through nginx, retrying as a client does (test/helpers/retrying-upload.ts). */
function uploadAll(file: Buffer, id: string, ranges: ByteRange[], concurrency: number, log: SimpleResponse[]): Promise<SimpleResponse[]> {
  return uploadAllTo(topology.ports.nginx, file, id, ranges, concurrency, log, explain);
}

/** nginx's access log lines (the request line and `upstream=` of each request). */
function accessLog(): string[] {
  return readFileSync(path.join(topology.dir, 'nginx', 'access.log'), 'utf8').split('\n');
}

function get(urlPath: string, headers: Array<[string, string]> = []): Promise<SimpleResponse> {
  return send(topology.ports.nginx, httpRequest('GET', urlPath, headers), Buffer.alloc(0), { timeoutMs: 10_000 });
}

/** The upload is complete, handed off once, and the finished file is `data` byte for byte (on disk and through nginx). */
async function expectFinished(id: string, data: Buffer, filesBefore: string[], handoffsBefore: number): Promise<void> {
  const status = await statusQuery(topology.ports.nginx, id);
  expect(status.status).toBe(200);
  expect(status.headers['x-upload-state']).toBe('complete');
  expect(status.headers['x-upload-backend-status']).toBe('200');
  if (topology.handoffs() - handoffsBefore !== 1) throw new Error(explain(`expected exactly one hand-off, the backend got ${topology.handoffs() - handoffsBefore}`));
  const added = finishedFiles(topology).filter((name) => !filesBefore.includes(name));
  expect(added).toHaveLength(1);
  expect(readFileSync(path.join(topology.dataDir, 'files', added[0])).equals(data)).toBe(true);
  const served = await get(`/files/${encodeURIComponent(added[0])}`);
  expect(served.status).toBe(200);
  expect(served.body.equals(data)).toBe(true);
}

test('nginx, the gateways and the backend run the docker/ files with only addresses, ports and paths substituted', () => {
  const nginxConf = readFileSync(topology.nginx.configFile, 'utf8');
  const substituted = /listen 80;|gateway[12]:8080|backend:9000|\/var\/log\/nginx\//;
  for (const line of readFileSync(NGINX_SITE, 'utf8').split('\n')) if (!substituted.test(line)) expect(nginxConf).toContain(line);
  expect(nginxConf).toContain(`server 127.0.0.1:${topology.ports.gateways[0]} max_fails=1 fail_timeout=5s;`);
  expect(nginxConf).toContain(`server 127.0.0.1:${topology.ports.gateways[1]} max_fails=1 fail_timeout=5s;`);
  const gatewayConf = readFileSync(path.join(topology.dir, 'gateway1.conf'), 'utf8');
  const gatewaySubstituted = /^listen |redis:\/\/|backend:9000/;
  for (const line of readFileSync(GATEWAY_CONF, 'utf8').split('\n')) {
    if (!gatewaySubstituted.test(line.trim())) expect(gatewayConf).toContain(line.split(VOLUME).join(topology.dataDir));
  }
  expect(gatewayConf).toContain(`upload_state_redis redis://127.0.0.1:${topology.ports.redis}/0;`);
});

test('/healthz answers ok on each gateway and through nginx', async () => {
  for (const port of [...topology.ports.gateways, topology.ports.nginx]) {
    const response = await send(port, httpRequest('GET', '/healthz', []), Buffer.alloc(0), { timeoutMs: 5000 });
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('ok\n');
  }
});

test('the upload page and upload progress through nginx: either replica reports the whole session', async () => {
  const page = await get('/');
  expect(page.status).toBe(200);
  expect(page.body.toString()).toContain('"progressUrl":"/progress"');
  expect((await get('/client.js')).status).toBe(200);
  expect((await get('/_page/app.js')).status).toBe(200);

  const data = randomFile(1 * MiB + 99, 13);
  const id = `topo-progress-${Date.now()}`;
  const progress = async () => (await get(`/progress?X-Progress-ID=${id}`)).body.toString();
  expect(await progress()).toBe('{ "state" : "starting" }\r\n');
  const logBefore = topology.upstreams().length;
  const ranges = segmentsOf(data.length, 256 * 1024);
  let held = 0;
  for (const range of ranges) {
    const body = data.subarray(range.start, range.end + 1);
    const request = segmentRequest(id, range.start, range.end, data.length, body, [['X-Progress-ID', id]]);
    const answer = await send(topology.ports.nginx, request.subarray(0, request.length - body.length), body, { timeoutMs: 30_000 });
    expect([201, 200]).toContain(answer.status);
    held += body.length;
    // Two probes: round robin puts them on both replicas; both see the whole session.
    for (let i = 0; i < 2; i++) {
      expect(await progress()).toBe(held < data.length ? `{ "state" : "uploading", "received" : ${held}, "size" : ${data.length} }\r\n` : '{ "state" : "done" }\r\n');
    }
  }
  const upstreams = new Set(topology.upstreams().slice(logBefore));
  for (const port of topology.ports.gateways) expect([...upstreams]).toContain(`127.0.0.1:${port}`);
}, 60_000);

test('parallel segments through nginx are spread over both gateways; the upload completes once, byte-identical', async () => {
  const data = randomFile(8 * MiB + 12345, 11);
  const id = `topo-parallel-${Date.now()}`;
  const filesBefore = finishedFiles(topology);
  const handoffsBefore = topology.handoffs();
  const logBefore = topology.upstreams().length;

  const log: SimpleResponse[] = [];
  const answers = await uploadAll(data, id, segmentsOf(data.length, 512 * 1024), 8, log);

  // Exactly one segment completed the upload and got the backend's answer; the others got 201
  // (or, sent again after completion, the stored answer: D7).
  const completions = answers.filter((a) => a.status === 200);
  expect(completions.length).toBeGreaterThanOrEqual(1);
  for (const answer of completions) expect(answer.body.toString()).toBe('complete');
  await expectFinished(id, data, filesBefore, handoffsBefore);

  // nginx sent this upload's segments to both replicas.
  const upstreams = new Set(topology.upstreams().slice(logBefore));
  for (const port of topology.ports.gateways) expect([...upstreams]).toContain(`127.0.0.1:${port}`);
}, 120_000);

/**
 * Waits until nginx sends requests to both replicas again: a peer that failed a request (an upload
 * cut by an earlier test, on a loaded machine) sits out `fail_timeout` (docker/nginx/default.conf).
 */
async function bothReplicasInRotation(): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const logBefore = topology.upstreams().length;
    for (let i = 0; i < 6; i++) expect((await get('/healthz')).status).toBe(200);
    const seen = new Set(topology.upstreams().slice(logBefore));
    if (topology.ports.gateways.every((port) => seen.has(`127.0.0.1:${port}`))) return;
    if (Date.now() > deadline) throw new Error(explain(`nginx kept sending /healthz to ${[...seen].join(', ')} only`));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

test('a tus upload (tus-js-client) through nginx: its PATCHes reach both gateways, the Redis session is one upload, handed off once', async () => {
  const data = randomFile(3 * MiB + 4321, 14);
  await bothReplicasInRotation();
  const filesBefore = finishedFiles(topology);
  const handoffsBefore = topology.handoffs();
  const logBefore = accessLog().length;
  const url = await new Promise<string>((resolve, reject) => {
    const upload: tus.Upload = new tus.Upload(data, {
      endpoint: `${topology.url}/upload`, chunkSize: 256 * 1024, retryDelays: [0, 200, 1000],
      metadata: { filename: `topo-tus-${Date.now()}.bin`, filetype: 'application/octet-stream' },
      onSuccess: () => resolve(upload.url!), onError: reject,
    });
    upload.start();
  });
  const id = new URL(url).pathname.split('/').pop()!;
  // The module's status query through nginx reports the tus upload complete (D22).
  await expectFinished(id, data, filesBefore, handoffsBefore);
  const patches = accessLog().slice(logBefore).filter((line) => line.includes(`"PATCH /upload/${id} `));
  expect(patches.length).toBe(Math.ceil(data.length / (256 * 1024)));
  for (const port of topology.ports.gateways) {
    if (!patches.some((line) => line.includes(`upstream=127.0.0.1:${port} `))) throw new Error(explain(`no PATCH reached 127.0.0.1:${port}:\n${patches.join('\n')}`));
  }
}, 60_000);

test('Prometheus scrapes both gateways (docker/prometheus/prometheus.yml); nginx does not pass /metrics on', async () => {
  expect((await get('/metrics')).status).toBe(404);
  const replicas = topology.ports.gateways.map((port) => `127.0.0.1:${port}`);
  for (const port of topology.ports.gateways) expect((await promtoolCheck(await scrape(port))).code).toBe(0);
  await eventually('both targets up', async () => {
    const up = await topology.query('up{job="upload-gateway"}');
    return up.length === 2 && up.every((s) => s.value[1] === '1');
  }, 30_000);
  expect((await topology.query('up{job="upload-gateway"}')).map((s) => s.metric.instance).sort()).toEqual(replicas.sort());
  // The uploads above, counted by each replica and scraped by Prometheus.
  await eventually('both replicas\' segments in Prometheus', async () => {
    const served = await topology.query('sum by (instance) (upload_gateway_segments_acknowledged_total)');
    return served.length === 2 && served.every((s) => Number(s.value[1]) > 0);
  }, 30_000);
}, 60_000);

/** True while segments stream into the gateway on `port` (its own metrics). */
async function receivingSegments(port: number): Promise<boolean> {
  return (sample(await scrape(port), 'upload_gateway_segments_in_flight') ?? 0) > 0;
}

test('one gateway killed mid-upload: the upload completes through the other, byte-identical, handed off once', async () => {
  const data = randomFile(16 * MiB + 777, 12);
  const id = `topo-kill-${Date.now()}`;
  const ranges = segmentsOf(data.length, MiB);
  const filesBefore = finishedFiles(topology);
  const handoffsBefore = topology.handoffs();
  const logBefore = topology.upstreams().length;

  // gateway1 is killed (SIGKILL) while segments stream to it; the client's retries go on through nginx.
  const victim = topology.gateways[0];
  const answers = await uploadKillingAReplica({
    port: topology.ports.nginx, file: data, id, ranges, explain,
    replicas: topology.ports.gateways.map((port) => `127.0.0.1:${port}`),
    upstreams: async () => topology.upstreams(),
    kill: () => victim.kill(),
    streaming: () => receivingSegments(victim.port),
  });
  expect(victim.child.signalCode).toBe('SIGKILL');
  expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
  await expectFinished(id, data, filesBefore, handoffsBefore);

  // After the kill everything went to the surviving replica.
  const survivor = `127.0.0.1:${topology.ports.gateways[1]}`;
  const after = topology.upstreams().slice(logBefore).filter((u) => !u.includes(String(topology.ports.gateways[0])));
  expect(after).toContain(survivor);
}, 150_000);

test('one gateway stopped gracefully (SIGTERM) and the other reloaded (SIGHUP) mid-upload: every segment in flight is acknowledged, the gateway exits 0, the upload completes once, byte-identical', async () => {
  // The gateway killed above starts again.
  const restarted = await topology.restartGateway(0);
  const victim = topology.gateways[1];
  const data = randomFile(16 * MiB + 555, 14);
  const id = `topo-graceful-${Date.now()}`;
  const filesBefore = finishedFiles(topology);
  const handoffsBefore = topology.handoffs();
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => victim.child.once('exit', (code, signal) => resolve({ code, signal })));

  const answers = await uploadStoppingAReplica({
    port: topology.ports.nginx, file: data, id, ranges: segmentsOf(data.length, MiB), explain,
    replicas: topology.ports.gateways.map((port) => `127.0.0.1:${port}`),
    upstreams: async () => topology.upstreams(),
    kill: async () => {
      restarted.child.kill('SIGHUP');
      victim.child.kill('SIGTERM');
      await eventually('the stopping gateway refuses connections', () => refused(victim.port), 10_000);
    },
    streaming: () => receivingSegments(victim.port),
  });
  expect(await exit).toEqual({ code: 0, signal: null });
  // Segments held during the stop (the 5th to 8th) were acknowledged by the stopping gateway itself (its access log).
  const held = segmentsOf(data.length, MiB).slice(4, 8).map((r) => `"range":"bytes ${r.start}-${r.end}/${data.length}","status":201`);
  if (!held.some((entry) => victim.output().includes(entry))) throw new Error(explain('no held segment was acknowledged by the stopping gateway'));
  expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
  await expectFinished(id, data, filesBefore, handoffsBefore);
}, 150_000);
