/**
 * The deployment of docker/docker-compose.yml, natively on loopback (no container engine here):
 * a real nginx (Debian package) running docker/nginx/default.conf, two gateway processes (the built
 * `dist/`) running docker/gateway.conf, a real redis-server with the compose file's arguments, the
 * sample backend with the compose file's command, and a real prometheus (Debian package) with
 * docker/prometheus/prometheus.yml and the compose file's command. Only addresses, ports and the volume path
 * are substituted; everything else is read from the docker/ files, so the compose topology and
 * this one cannot drift apart.
 *
 * Used by test/topology.test.ts and by `npm run topology` (scripts/topology.js).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nginxHttpWrapper, runNginx, substituteOnce, type NginxProcess } from './nginx';
import { REPO_ROOT, findProgram, freePort, startService, tempDir, type ServiceProcess } from './process';
import { startRedis, type RedisProcess } from './redis';

export const COMPOSE_FILE = path.join(REPO_ROOT, 'docker/docker-compose.yml');
export const NGINX_SITE = path.join(REPO_ROOT, 'docker/nginx/default.conf');
export const GATEWAY_CONF = path.join(REPO_ROOT, 'docker/gateway.conf');
export const PROMETHEUS_CONF = path.join(REPO_ROOT, 'docker/prometheus/prometheus.yml');
/** The shared volume's mount point in the containers. */
export const VOLUME = '/var/lib/upload-gateway';
/** The gateway services of the compose file, in upstream order. */
export const GATEWAY_SERVICES = ['gateway1', 'gateway2'] as const;

/**
 * The `command:` of a block of the compose file (a service, or the `x-gateway` anchor the gateway
 * services share), written there as a one-line JSON array.
 */
export function composeCommand(block: string): string[] {
  const lines = readFileSync(COMPOSE_FILE, 'utf8').split('\n');
  // `x-…` extension blocks are at the top level, services two spaces in under `services:`.
  const from = block.startsWith('x-') ? 0 : lines.indexOf('services:');
  const indent = block.startsWith('x-') ? 0 : 2;
  const header = new RegExp(`^ {${indent}}${block}:(\\s+&[\\w-]+)?\\s*$`);
  const start = from < 0 ? -1 : lines.findIndex((line, i) => i > from - (indent === 0 ? 1 : 0) && header.test(line));
  if (start < 0) throw new Error(`${path.relative(REPO_ROOT, COMPOSE_FILE)}: no "${block}:" block`);
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    if (/^\s*/.exec(line)![0].length <= indent) break;
    const m = /^\s*command:\s*(\[.*\])\s*$/.exec(line);
    if (m) return JSON.parse(m[1]) as string[];
  }
  throw new Error(`${path.relative(REPO_ROOT, COMPOSE_FILE)}: "${block}" has no one-line JSON \`command:\``);
}

export interface Ports {
  nginx: number;
  gateways: [number, number];
  backend: number;
  redis: number;
  prometheus: number;
}

/** docker/gateway.conf with the listen address, the Redis and backend addresses and the volume path substituted. */
export function gatewayConfig(ports: Ports, index: number, dataDir: string): string {
  let text = readFileSync(GATEWAY_CONF, 'utf8');
  text = substituteOnce(text, /^listen 0\.0\.0\.0:8080;/m, `listen 127.0.0.1:${ports.gateways[index]};`, '`listen 0.0.0.0:8080;` line', GATEWAY_CONF);
  text = substituteOnce(text, /redis:\/\/redis:6379\//, `redis://127.0.0.1:${ports.redis}/`, 'redis://redis:6379/ URL', GATEWAY_CONF);
  text = substituteOnce(text, /http:\/\/backend:9000\//, `http://127.0.0.1:${ports.backend}/`, 'http://backend:9000/ URL', GATEWAY_CONF);
  if (!text.includes(VOLUME)) throw new Error(`${path.relative(REPO_ROOT, GATEWAY_CONF)}: expected paths under ${VOLUME}`);
  return text.split(VOLUME).join(dataDir);
}

/** A complete nginx.conf around docker/nginx/default.conf (ports, service addresses and log paths substituted). */
export function topologyNginxConfig(ports: Ports, dir: string): string {
  let site = readFileSync(NGINX_SITE, 'utf8');
  const sub = (pattern: RegExp, replacement: string | ((m: string, ...g: string[]) => string), what: string) => {
    site = substituteOnce(site, pattern, replacement, what, NGINX_SITE);
  };
  sub(/^([ \t]*)listen 80;/m, (_, indent) => `${indent}listen 127.0.0.1:${ports.nginx};`, '`listen 80;` line');
  GATEWAY_SERVICES.forEach((service, i) => sub(new RegExp(`\\b${service}:8080\\b`), `127.0.0.1:${ports.gateways[i]}`, `${service}:8080 upstream server`));
  sub(/\bbackend:9000\b/, `127.0.0.1:${ports.backend}`, 'backend:9000 upstream server');
  sub(/\/var\/log\/nginx\/upload-gateway\.access\.log/, path.join(dir, 'access.log'), 'access_log path');
  sub(/\/var\/log\/nginx\/upload-gateway\.error\.log/, path.join(dir, 'error.log'), 'error_log path');
  return nginxHttpWrapper(dir, 'docker/nginx/default.conf', site, 512);
}

/** docker/prometheus/prometheus.yml with the replicas' addresses substituted. */
export function prometheusConfig(ports: Ports): string {
  let text = readFileSync(PROMETHEUS_CONF, 'utf8');
  GATEWAY_SERVICES.forEach((service, i) => {
    text = substituteOnce(text, new RegExp(`"${service}:8080"`), `"127.0.0.1:${ports.gateways[i]}"`, `"${service}:8080" target`, PROMETHEUS_CONF);
  });
  return text;
}

/** The prometheus binary (Debian package `prometheus`): $PROMETHEUS_BIN, else on PATH, else /usr/bin. */
export function findPrometheus(): string {
  return findProgram('prometheus', 'PROMETHEUS_BIN', ['/usr/bin/prometheus'], 'install the Debian package: `apt-get install -y prometheus` (.ci/run does), or set PROMETHEUS_BIN');
}

/** A compose `command:` made runnable here: node, the repository's bin, loopback addresses, the volume path. */
function nativeCommand(command: string[], listen: string, dataDir: string): [string, string[]] {
  const args = command.map((arg) => {
    if (arg === 'node') return process.execPath;
    if (arg.startsWith('bin/')) return path.join(REPO_ROOT, arg);
    if (/^0\.0\.0\.0:\d+$/.test(arg)) return listen;
    return arg.split(VOLUME).join(dataDir);
  });
  return [args[0], args.slice(1)];
}

export interface Topology {
  dir: string;
  /** The volume: store/ (upload_store) and files/ (the sample backend's finished files). */
  dataDir: string;
  ports: Ports;
  /** nginx, the only entry point (as `ports: 8080:80` in the compose file). */
  url: string;
  nginx: NginxProcess;
  redis: RedisProcess;
  gateways: ServiceProcess[];
  backend: ServiceProcess;
  /** Prometheus scraping both gateways (docker/prometheus/prometheus.yml). */
  prometheus: ServiceProcess;
  /** Starts gateway `index` again (after it was stopped or killed), with the same command and port. */
  restartGateway(index: number): Promise<ServiceProcess>;
  /** A PromQL instant query through Prometheus's HTTP API: its result vector. */
  query(promql: string): Promise<PromSample[]>;
  /** Hand-offs the sample backend received so far. */
  handoffs(): number;
  /** `upstream=` of every request nginx logged (the replica that served it). */
  upstreams(): string[];
  /** Every process's output, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface TopologyOptions {
  /** nginx's port (default: a free one). */
  nginxPort?: number;
  /** Keep the directory after stop (default: removed). */
  keepDir?: boolean;
  /** LOG_LEVEL of the gateways (default warn). */
  logLevel?: string;
}

/** Starts redis, the sample backend, two gateways and nginx, in the compose file's dependency order. */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  if (options.nginxPort !== undefined) await assertPortFree(options.nginxPort);
  const dir = tempDir('topology-');
  const dataDir = path.join(dir, 'volume');
  mkdirSync(dataDir);
  const ports: Ports = {
    nginx: options.nginxPort ?? (await freePort()),
    gateways: [await freePort(), await freePort()],
    backend: await freePort(),
    redis: await freePort(),
    prometheus: await freePort(),
  };
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const service of started.reverse()) await service.stop().catch(() => undefined);
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    // redis: the compose file's arguments, in a directory of its own.
    const [redisBin, ...redisArgs] = composeCommand('redis');
    if (redisBin !== 'redis-server') throw new Error(`compose redis command starts with ${redisBin}, expected redis-server`);
    const redisDir = path.join(dir, 'redis');
    mkdirSync(redisDir);
    const redis = await startRedis({ port: ports.redis, extraArgs: redisArgs, dir: redisDir });
    started.push(redis);

    const [backendBin, backendArgs] = nativeCommand(composeCommand('backend'), `127.0.0.1:${ports.backend}`, dataDir);
    const backend = await startService('backend', backendBin, backendArgs, { port: ports.backend, cwd: dir, env: { LOG_LEVEL: 'info' } });
    started.push(backend);

    const gateways: ServiceProcess[] = [];
    const startGateway = async (i: number) => {
      const configFile = path.join(dir, `${GATEWAY_SERVICES[i]}.conf`);
      writeFileSync(configFile, gatewayConfig(ports, i, dataDir));
      const command = composeCommand('x-gateway').map((arg) => (arg.endsWith('.conf') ? configFile : arg));
      const [bin, args] = nativeCommand(command, `127.0.0.1:${ports.gateways[i]}`, dataDir);
      const gateway = await startService(GATEWAY_SERVICES[i], bin, args, { port: ports.gateways[i], cwd: dir, env: { LOG_LEVEL: options.logLevel ?? 'warn' } });
      started.push(gateway);
      gateways[i] = gateway;
      return gateway;
    };
    for (let i = 0; i < GATEWAY_SERVICES.length; i++) await startGateway(i);

    const nginxDir = path.join(dir, 'nginx');
    mkdirSync(nginxDir);
    const nginx = await runNginx(topologyNginxConfig(ports, nginxDir), { dir: nginxDir, port: ports.nginx, keepDir: true });
    started.push(nginx);

    // Prometheus: the compose file's command, the configuration and data paths made local.
    const prometheusDir = path.join(dir, 'prometheus');
    mkdirSync(path.join(prometheusDir, 'data'), { recursive: true });
    const prometheusFile = path.join(prometheusDir, 'prometheus.yml');
    writeFileSync(prometheusFile, prometheusConfig(ports));
    const prometheusArgs = composeCommand('prometheus').map((arg) =>
      arg.replace(/^--config\.file=.*/, `--config.file=${prometheusFile}`).replace(/^--storage\.tsdb\.path=.*/, `--storage.tsdb.path=${path.join(prometheusDir, 'data')}`),
    );
    const prometheus = await startService('prometheus', findPrometheus(), [...prometheusArgs, `--web.listen-address=127.0.0.1:${ports.prometheus}`], { port: ports.prometheus, cwd: prometheusDir });
    started.push(prometheus);

    const accessLog = path.join(nginxDir, 'access.log');
    return {
      dir, dataDir, ports, url: `http://127.0.0.1:${ports.nginx}`, nginx, redis, gateways, backend, prometheus,
      restartGateway: (i) => {
        const running = gateways[i];
        if (running.child.exitCode === null && running.child.signalCode === null) throw new Error(`${running.name} is still running`);
        return startGateway(i);
      },
      query: (promql) => promQuery(ports.prometheus, promql),
      handoffs: () => (backend.output().match(/sample backend: hand-off received/g) ?? []).length,
      upstreams: () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8') : '').split('\n').flatMap((line) => /upstream=(\S+)/.exec(line)?.[1] ?? []),
      output: () =>
        [
          ...gateways.map((g) => `--- ${g.name} ---\n${g.output()}`),
          `--- backend ---\n${backend.output()}`,
          `--- redis ---\n${redis.output()}`,
          `--- prometheus ---\n${prometheus.output().slice(-3000)}`,
          `--- nginx ---\n${nginx.output()}`,
        ].join('\n'),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Fails clearly when something already listens on `port` (nginx would not start, and the wait for its port would be fooled). */
async function assertPortFree(port: number): Promise<void> {
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) => reject(new Error(`port ${port} is taken (${err.message}); choose another with --port`)));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

/** Files in the sample backend's files directory. */
export function finishedFiles(topology: Topology): string[] {
  const files = path.join(topology.dataDir, 'files');
  return existsSync(files) ? readdirSync(files) : [];
}

/** A series of a PromQL instant query's answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A PromQL instant query to the Prometheus server on `port`. */
export async function promQuery(port: number, promql: string): Promise<PromSample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data: { result: PromSample[] } };
  if (body.status !== 'success') throw new Error(`prometheus query ${promql}: ${JSON.stringify(body)}`);
  return body.data.result;
}
