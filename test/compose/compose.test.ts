/**
 * docker/docker-compose.yml for real: `docker-compose up --build` on podman builds docker/Dockerfile
 * and starts nginx, two gateway replicas, Redis and the sample backend from the committed files;
 * every request goes through the nginx container's published port. Only what the unreachable
 * registry would give is replaced: node, nginx and redis are stand-ins made from Debian packages
 * (test/helpers/stand-in-images.ts), and nginx is published on a free host port
 * (UPLOAD_GATEWAY_PORT). podman, its API service and the healthcheck loop: test/helpers/podman.ts.
 *
 * Part of `npm test`; alone: `npm run test:compose`. As root (README "Deploy"). A missing program
 * fails every test.
 */
import { COMPOSE_FILE, GATEWAY_SERVICES, VOLUME, composeCommand, promQuery, type PromSample } from '../helpers/topology';
import { freePort, succeeded } from '../helpers/process';
import { httpRequest, segmentRequest } from '../helpers/gateway';
import { randomFile, send, sleep, statusQuery, type SimpleResponse } from '../helpers/segments';
import { segmentsOf, uploadAll, uploadKillingAReplica } from '../helpers/retrying-upload';
import { pinNewBridgeAddresses, runHealthchecks, startPodman, type Podman } from '../helpers/podman';
import { makeStandInImages } from '../helpers/stand-in-images';

const MiB = 1024 * 1024;
/**
 * Each run's own compose project, `upload-gateway-compose-test-<pid>` (its containers, network
 * and volumes are named `<project>_…`): runs from several checkouts at once do not meet.
 */
const PROJECT_PREFIX = 'upload-gateway-compose-test-';
const PROJECT = `${PROJECT_PREFIX}${process.pid}`;
const SERVICES = ['backend', 'gateway1', 'gateway2', 'nginx', 'prometheus', 'redis'];
/** Services with a healthcheck (the gateways: the image's HEALTHCHECK). */
const HEALTH_CHECKED = ['backend', 'gateway1', 'gateway2', 'redis'];
/** The image's non-root user (docker/Dockerfile). */
const GATEWAY_UID = '10001';

let podman: Podman;
let healthchecks: { stop(): Promise<void> } | undefined;
let port: number;
let prometheusPort: number;
let up = false;

const container = (service: string) => `${PROJECT}_${service}_1`;

function compose(args: string[], timeoutMs = 300_000, project = PROJECT): Promise<{ code: number | null; output: string }> {
  return podman.compose(['-p', project, '-f', COMPOSE_FILE, ...args], { UPLOAD_GATEWAY_PORT: String(port), UPLOAD_GATEWAY_PROMETHEUS_PORT: String(prometheusPort) }, timeoutMs);
}

/** The engine's containers, networks and volumes whose names start with `prefix`. */
async function objectsNamed(prefix: string): Promise<Record<'containers' | 'networks' | 'volumes', string[]>> {
  const names = async (args: string[]) => (await podman.check(args)).split('\n').filter((name) => name.startsWith(prefix)).sort();
  return {
    containers: await names(['ps', '--all', '--format', '{{.Names}}']),
    networks: await names(['network', 'ls', '--format', '{{.Name}}']),
    volumes: await names(['volume', 'ls', '--format', '{{.Name}}']),
  };
}

/** Takes down the projects of earlier runs whose process is gone (killed before their `down -v`). */
async function removeAbandonedProjects(): Promise<void> {
  const found = await objectsNamed(PROJECT_PREFIX);
  const projects = new Set([...found.containers, ...found.networks, ...found.volumes].map((name) => name.slice(0, name.indexOf('_'))));
  for (const project of projects) {
    const pid = Number(project.slice(PROJECT_PREFIX.length));
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await compose(['down', '--volumes', '--remove-orphans'], 300_000, project);
  }
}

beforeAll(async () => {
  const started = Date.now();
  podman = await startPodman();
  const images = await makeStandInImages(podman);
  port = await freePort();
  prometheusPort = await freePort();
  await removeAbandonedProjects();
  healthchecks = runHealthchecks(podman, PROJECT);
  const upStarted = Date.now();
  const bridges = pinNewBridgeAddresses(podman);
  const result = await compose(['up', '--build', '--detach'], 1_800_000).finally(() => bridges.stop());
  up = true;
  if (result.code !== 0) throw new Error(`docker-compose up --build failed (${result.code}):\n${result.output.slice(-8000)}`);
  console.log(
    [
      ...images.map((i) => `${i.image}: ${i.how} (${i.seconds.toFixed(1)} s)`),
      `docker-compose up --build: ${((Date.now() - upStarted) / 1000).toFixed(1)} s`,
      `ready after ${((Date.now() - started) / 1000).toFixed(1)} s`,
    ].join('\n'),
  );
}, 1_800_000);

afterAll(async () => {
  await healthchecks?.stop();
  if (up) await compose(['down', '--volumes']).catch(() => undefined);
  await podman?.stop();
}, 120_000);

async function explain(message: string): Promise<string> {
  const logs = await compose(['logs', '--no-color', '--tail', '60']);
  return `${message}\n${logs.output.slice(-8000)}`;
}

function get(urlPath: string): Promise<SimpleResponse> {
  return send(port, httpRequest('GET', urlPath, []), Buffer.alloc(0), { timeoutMs: 10_000 });
}

/** Runs a command in a service's container (as the image's user). */
function exec(service: string, ...command: string[]): Promise<string> {
  return podman.check(['exec', container(service), ...command]);
}

/** A gateway replica as nginx's access log names it (`upstream=IP:8080`). */
async function replicaAddress(service: string): Promise<string> {
  const ip = (await podman.check(['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container(service)])).trim();
  return `${ip}:8080`;
}

/** Every upstream address nginx logged (`$upstream_addr`: several when it tried more than one). */
async function upstreams(): Promise<string[]> {
  const log = await exec('nginx', 'cat', '/var/log/nginx/upload-gateway.access.log');
  return log.split('\n').flatMap((line) => /upstream=(.+?) upstream_status=/.exec(line)?.[1].split(/\s*[,:]\s+/) ?? []);
}

/** Hand-offs the sample backend received so far (its log). */
async function handoffs(): Promise<number> {
  return ((await podman.check(['logs', container('backend')])).match(/sample backend: hand-off received/g) ?? []).length;
}

/** The sample backend's finished files (on the shared volume). */
async function finishedFiles(): Promise<string[]> {
  return (await exec('backend', 'ls', '-A', `${VOLUME}/files`)).split('\n').filter(Boolean);
}

/** What the sample backend has received so far: its finished files and the number of hand-offs. */
async function delivered(): Promise<{ files: string[]; handoffs: number }> {
  return { files: await finishedFiles(), handoffs: await handoffs() };
}

/** Since `before`: the upload is complete, handed off once, and the finished file nginx serves is `data`. */
async function expectFinished(id: string, data: Buffer, before: { files: string[]; handoffs: number }): Promise<void> {
  // Through nginx, which may first try a replica killed by the test: a container gone with its
  // address answers nothing, so that costs nginx's proxy_connect_timeout (5 s) before the other.
  const status = await statusQuery(port, id, 20_000);
  expect(status.status).toBe(200);
  expect(status.headers['x-upload-state']).toBe('complete');
  expect(status.headers['x-upload-backend-status']).toBe('200');
  const handedOff = (await handoffs()) - before.handoffs;
  if (handedOff !== 1) throw new Error(await explain(`expected exactly one hand-off, the backend got ${handedOff}`));
  const added = (await finishedFiles()).filter((name) => !before.files.includes(name));
  expect(added).toHaveLength(1);
  const served = await get(`/files/${encodeURIComponent(added[0])}`);
  expect(served.status).toBe(200);
  expect(served.body.equals(data)).toBe(true);
}

test('up --build: every healthcheck turns healthy (the sample backend\'s arrives whole), nginx runs', async () => {
  const deadline = Date.now() + 90_000;
  let health: string[] = [];
  for (;;) {
    health = await Promise.all(HEALTH_CHECKED.map(async (service) => (await podman.check(['inspect', '--format', '{{.State.Health.Status}}', container(service)])).trim()));
    if (health.every((h) => h === 'healthy') || Date.now() > deadline) break;
    await sleep(1000);
  }
  expect(Object.fromEntries(HEALTH_CHECKED.map((service, i) => [service, health[i]]))).toEqual(Object.fromEntries(HEALTH_CHECKED.map((service) => [service, 'healthy'])));
  const backendTest = JSON.parse(await podman.check(['inspect', '--format', '{{json .Config.Healthcheck.Test}}', container('backend')])) as string[];
  expect(backendTest).toEqual(['CMD', 'node', 'bin/upload-gateway.js', 'healthcheck', 'http://127.0.0.1:9000/healthz']);
  expect((await podman.check(['inspect', '--format', '{{.State.Status}}', container('nginx')])).trim()).toBe('running');
  expect((await compose(['ps', '--services'])).output.trim().split('\n').sort()).toEqual(SERVICES);
}, 120_000);

test('/healthz, the upload page and /progress answer through nginx', async () => {
  const health = await get('/healthz');
  expect(health.status).toBe(200);
  expect(health.body.toString()).toBe('ok\n');
  const page = await get('/');
  expect(page.status).toBe(200);
  expect(page.body.toString()).toContain('"progressUrl":"/progress"');
  expect((await get('/client.js')).status).toBe(200);

  const data = randomFile(512 * 1024 + 7, 30);
  const id = `compose-progress-${Date.now()}`;
  const progress = async () => (await get(`/progress?X-Progress-ID=${id}`)).body.toString();
  expect(await progress()).toBe('{ "state" : "starting" }\r\n');
  for (const range of segmentsOf(data.length, 256 * 1024)) {
    const body = data.subarray(range.start, range.end + 1);
    const request = segmentRequest(id, range.start, range.end, data.length, body, [['X-Progress-ID', id]]);
    const answer = await send(port, request.subarray(0, request.length - body.length), body, { timeoutMs: 30_000 });
    expect([201, 200]).toContain(answer.status);
    const received = range.end + 1;
    expect(await progress()).toBe(received < data.length ? `{ "state" : "uploading", "received" : ${received}, "size" : ${data.length} }\r\n` : '{ "state" : "done" }\r\n');
  }
}, 60_000);

test('parallel segments through nginx are spread over both replicas; the upload arrives once, byte-identical', async () => {
  const data = randomFile(8 * MiB + 12345, 31);
  const id = `compose-parallel-${Date.now()}`;
  const before = await delivered();
  const logBefore = (await upstreams()).length;

  const answers = await uploadAll(port, data, id, segmentsOf(data.length, 512 * 1024), 8, [], explain);
  // Exactly one segment completed the upload; any sent again afterwards got the stored answer (D7).
  const completions = answers.filter((a) => a.status === 200);
  expect(completions.length).toBeGreaterThanOrEqual(1);
  for (const answer of completions) expect(answer.body.toString()).toBe('complete');
  await expectFinished(id, data, before);

  const served = new Set((await upstreams()).slice(logBefore));
  for (const service of GATEWAY_SERVICES) expect([...served]).toContain(await replicaAddress(service));
}, 180_000);

/** A PromQL instant query to the prometheus service (its published port). */
function query(promql: string): Promise<PromSample[]> {
  return promQuery(prometheusPort, promql);
}

test('the prometheus service scrapes both replicas\' /metrics, which nginx does not pass on', async () => {
  expect((await get('/metrics')).status).toBe(404);
  const deadline = Date.now() + 60_000;
  let up: Awaited<ReturnType<typeof query>> = [];
  while (Date.now() < deadline) {
    up = await query('up{job="upload-gateway"}').catch(() => []);
    if (up.length === 2 && up.every((s) => s.value[1] === '1')) break;
    await sleep(1000);
  }
  expect(up.map((s) => [s.metric.instance, s.value[1]]).sort()).toEqual([['gateway1:8080', '1'], ['gateway2:8080', '1']]);
  // The uploads above, counted by each replica.
  let served: Awaited<ReturnType<typeof query>> = [];
  while (Date.now() < deadline) {
    served = await query('sum by (instance) (upload_gateway_segments_acknowledged_total)');
    if (served.length === 2 && served.every((s) => Number(s.value[1]) > 0)) break;
    await sleep(1000);
  }
  expect(served.map((s) => s.metric.instance).sort()).toEqual(['gateway1:8080', 'gateway2:8080']);
  for (const s of served) expect(Number(s.value[1])).toBeGreaterThan(0);
}, 90_000);

test('the replicas and the backend run as the image\'s non-root user, which writes the shared volume', async () => {
  for (const service of ['gateway1', 'gateway2', 'backend']) {
    expect((await exec(service, 'id', '-u')).trim()).toBe(GATEWAY_UID);
    // The service's own process (pid 1: the compose `command`), not only exec'd ones.
    expect(await exec(service, 'cat', '/proc/1/status')).toMatch(new RegExp(`^Uid:\\s+${GATEWAY_UID}\\s`, 'm'));
  }
  expect(composeCommand('backend')).toContain(`${VOLUME}/files`);
  // The earlier uploads: the store (session records, the shared-store marker) and the finished
  // files, all written by the non-root user on the one volume.
  const files = (await exec('backend', 'find', VOLUME, '-type', 'f')).split('\n').filter(Boolean);
  expect(files).toContain(`${VOLUME}/store/.upload-gateway-shared`);
  expect(files.filter((file) => file.startsWith(`${VOLUME}/files/`)).length).toBeGreaterThanOrEqual(2);
  expect(await exec('backend', 'find', VOLUME, '!', '-user', GATEWAY_UID)).toBe('');
}, 60_000);

test('a replica killed mid-upload (podman kill): the client\'s retries finish through the other, once, byte-identical', async () => {
  const data = randomFile(16 * MiB + 777, 32);
  const id = `compose-kill-${Date.now()}`;
  const before = await delivered();
  const victim = container(GATEWAY_SERVICES[0]);

  const answers = await uploadKillingAReplica({
    port, file: data, id, ranges: segmentsOf(data.length, MiB), explain,
    replicas: await Promise.all(GATEWAY_SERVICES.map(replicaAddress)),
    upstreams,
    kill: async () => {
      await podman.check(['kill', victim]);
    },
  });
  expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
  await expectFinished(id, data, before);
}, 240_000);

test('SIGHUP reloads a replica, which keeps serving; docker-compose stop stops it gracefully (SIGQUIT, exit 0)', async () => {
  const replica = container(GATEWAY_SERVICES[1]);
  expect((await podman.check(['inspect', '--format', '{{.Config.StopSignal}}', replica])).trim()).toMatch(/^(SIGQUIT|3)$/);
  await podman.check(['kill', '--signal', 'HUP', replica]);
  const deadline = Date.now() + 30_000;
  while (!(await podman.check(['logs', replica])).includes('configuration reloaded') && Date.now() < deadline) await sleep(500);
  expect(await podman.check(['logs', replica])).toContain('configuration reloaded');
  // Asked in the container (through nginx a request may wait for the replica killed above).
  expect(await exec(GATEWAY_SERVICES[1], 'node', 'bin/upload-gateway.js', 'healthcheck', 'http://127.0.0.1:8080/healthz')).toBe('');

  await succeeded('docker-compose stop', compose(['stop', GATEWAY_SERVICES[1]], 120_000));
  expect((await podman.check(['inspect', '--format', '{{.State.ExitCode}}', replica])).trim()).toBe('0');
  const logs = await podman.check(['logs', replica]);
  expect(logs).toMatch(/"signal":"SIGQUIT","msg":"graceful stop"/);
  expect(logs).toContain('graceful stop: done');
}, 180_000);

test('down -v leaves no container, network or volume behind', async () => {
  expect(await objectsNamed(`${PROJECT}_`)).toEqual({
    containers: SERVICES.map(container),
    networks: [`${PROJECT}_default`],
    volumes: [`${PROJECT}_prometheus-data`, `${PROJECT}_redis-data`, `${PROJECT}_uploads`],
  });
  // Every volume the containers mount, named or anonymous.
  const inspected = await podman.check(['inspect', '--format', '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}', ...SERVICES.map(container)]);
  const mounted = [...new Set(inspected.split(/\s+/).filter(Boolean))].sort();
  expect(mounted).toEqual(expect.arrayContaining([`${PROJECT}_prometheus-data`, `${PROJECT}_redis-data`, `${PROJECT}_uploads`]));

  await succeeded('docker-compose down -v', compose(['down', '--volumes']));
  up = false;
  expect(await objectsNamed(`${PROJECT}_`)).toEqual({ containers: [], networks: [], volumes: [] });
  const volumes = (await podman.check(['volume', 'ls', '--format', '{{.Name}}'])).split('\n');
  expect(mounted.filter((volume) => volumes.includes(volume))).toEqual([]);
}, 120_000);
