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
import { ConnectionLost, randomFile, send, sendSegment, sleep, statusQuery, type ByteRange, type SimpleResponse } from './helpers/segments';
import { httpRequest, segmentRequest } from './helpers/gateway';

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

function segmentsOf(total: number, size: number): ByteRange[] {
  const ranges: ByteRange[] = [];
  for (let start = 0; start < total; start += size) ranges.push({ start, end: Math.min(total, start + size) - 1 });
  return ranges;
}

/** What a client does: re-send a segment until it is answered 201 or 200 (503 → after Retry-After; 502/504 or a lost connection → soon). */
async function sendUntilAnswered(file: Buffer, id: string, range: ByteRange, log: SimpleResponse[], deadline: number): Promise<SimpleResponse> {
  for (;;) {
    let response: SimpleResponse | null = null;
    try {
      response = await sendSegment(topology.ports.nginx, id, file, range, { timeoutMs: 30_000 });
      log.push(response);
      if (response.status === 201 || response.status === 200) return response;
      if (![502, 503, 504].includes(response.status)) {
        throw new Error(explain(`segment ${range.start}-${range.end}: unexpected ${response.status} ${response.body.toString('latin1')}`));
      }
    } catch (err) {
      if (!(err instanceof ConnectionLost)) throw err;
      log.push({ status: 0, headers: {}, body: Buffer.from(err.message) });
    }
    if (Date.now() > deadline) throw new Error(explain(`segment ${range.start}-${range.end} not accepted in time`));
    await sleep(response?.status === 503 ? Number(response.headers['retry-after'] ?? 1) * 1000 : 200);
  }
}

/** Sends `ranges` with `concurrency` segments in flight, retrying each until answered. */
async function uploadAll(file: Buffer, id: string, ranges: ByteRange[], concurrency: number, log: SimpleResponse[]): Promise<SimpleResponse[]> {
  const deadline = Date.now() + 90_000;
  const queue = [...ranges];
  const answers: SimpleResponse[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let range = queue.shift(); range; range = queue.shift()) answers.push(await sendUntilAnswered(file, id, range, log, deadline));
    }),
  );
  return answers;
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

test('one gateway killed mid-upload: the upload completes through the other, byte-identical, handed off once', async () => {
  const data = randomFile(16 * MiB + 777, 12);
  const id = `topo-kill-${Date.now()}`;
  const ranges = segmentsOf(data.length, MiB);
  const filesBefore = finishedFiles(topology);
  const handoffsBefore = topology.handoffs();
  const log: SimpleResponse[] = [];

  // Some segments acknowledged by both replicas first. nginx may briefly route around a replica
  // (max_fails=1 marks it down for fail_timeout after one failed upstream connection, e.g. an
  // idle keep-alive connection closed by the gateway), so identical re-sends (harmless, D4) go
  // out until both replicas have answered some — bounded.
  const logBefore = topology.upstreams().length;
  let early = new Set<string>();
  for (let attempt = 0; attempt < 8; attempt++) {
    await uploadAll(data, id, ranges.slice(0, 4), 4, log);
    early = new Set(topology.upstreams().slice(logBefore));
    if (topology.ports.gateways.every((port) => early.has(`127.0.0.1:${port}`))) break;
    await sleep(1000);
  }
  for (const port of topology.ports.gateways) expect([...early]).toContain(`127.0.0.1:${port}`);

  // Four segments in flight (round robin: two on each replica), each paused half-way through
  // its body; gateway1 is killed (SIGKILL) while they stream, then the bodies are finished.
  const victim = topology.gateways[0];
  let paused = 0;
  let killed: Promise<void> | null = null;
  const allPaused = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (paused === 4) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  const inFlight = ranges.slice(4, 8).map((range) =>
    sendSegment(topology.ports.nginx, id, data, range, {
      timeoutMs: 30_000,
      pauseAt: {
        bodyBytes: 256 * 1024,
        hook: async () => {
          paused++;
          await allPaused;
          // Give nginx time to pass the first bytes on to the replicas.
          await sleep(200);
          killed ??= victim.kill();
          await killed;
        },
      },
    }).then(
      (response) => response,
      (err: unknown) => {
        if (err instanceof ConnectionLost) return { status: 0, headers: {}, body: Buffer.from(err.message) } as SimpleResponse;
        throw err;
      },
    ),
  );
  const interrupted = await Promise.all(inFlight);
  expect(victim.child.signalCode).toBe('SIGKILL');
  // The segments streaming to the dead replica failed (nginx answers 502, or the connection goes).
  const failed = interrupted.filter((r) => r.status !== 201);
  if (failed.length === 0) throw new Error(explain(`no segment was in flight on the killed replica: ${interrupted.map((r) => r.status)}`));

  // The client carries on: the rest, and the failed ones again, all through nginx.
  const rest = [...ranges.slice(8), ...ranges.slice(4, 8).filter((_, i) => interrupted[i].status !== 201)];
  const answers = await uploadAll(data, id, rest, 4, log);
  expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
  await expectFinished(id, data, filesBefore, handoffsBefore);

  // After the kill everything went to the surviving replica.
  const survivor = `127.0.0.1:${topology.ports.gateways[1]}`;
  const after = topology.upstreams().slice(logBefore).filter((u) => !u.includes(String(topology.ports.gateways[0])));
  expect(after).toContain(survivor);
}, 150_000);
