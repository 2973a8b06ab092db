/**
 * docker/: the compose file is valid for Debian's `docker-compose` (`config -q`),
 * and the image, compose file, nginx and gateway configurations agree with each other. The
 * containers run in test/compose/; test/topology.test.ts runs the same topology natively.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfigFile } from '../src/config/parse';
import { parseSize, parseTime } from '../src/config/units';
import { REPO_ROOT } from './helpers/process';
import { COMPOSE_FILE, GATEWAY_CONF, GATEWAY_SERVICES, NGINX_SITE, PROMETHEUS_CONF, VOLUME, composeCommand } from './helpers/topology';

const INSTALL_HINT = 'install the Debian package: `apt-get install -y docker-compose` (.ci/run does)';

function dockerCompose(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  if (result.error) throw new Error(`cannot run docker-compose (${result.error.message}): ${INSTALL_HINT}`);
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

const dockerfile = readFileSync(path.join(REPO_ROOT, 'docker/Dockerfile'), 'utf8');
const compose = readFileSync(COMPOSE_FILE, 'utf8');
const nginxSite = readFileSync(NGINX_SITE, 'utf8');

test('docker-compose config -q accepts the compose file', () => {
  const result = dockerCompose('config', '-q');
  if (result.status !== 0) throw new Error(`docker-compose config -q failed (${result.status}):\n${result.output}`);
});

test('the services: nginx, two gateways, redis, the sample backend, prometheus; one shared volume', () => {
  const services = dockerCompose('config', '--services');
  expect(services.status).toBe(0);
  expect(services.output.trim().split('\n').sort()).toEqual(['backend', 'gateway1', 'gateway2', 'nginx', 'prometheus', 'redis']);
  const volumes = dockerCompose('config', '--volumes');
  expect(volumes.output.trim().split('\n').sort()).toEqual(['prometheus-data', 'redis-data', 'uploads']);
  // Gateways and backend mount the same volume at the same path (session records name files in it).
  expect(compose.match(new RegExp(`- uploads:${VOLUME}$`, 'gm'))).toHaveLength(2); // x-gateway (both replicas) and backend
  expect(compose).toMatch(/image: nginx:[\d.]+/);
  expect(compose).toContain('- ./nginx/default.conf:/etc/nginx/conf.d/default.conf:ro');
});

test('the image: multi-stage, non-root, health-checked on /healthz, runs docker/gateway.conf', () => {
  expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
  const user = /^USER (\S+)/m.exec(dockerfile)?.[1];
  expect(user).toBeDefined();
  expect(['root', '0']).not.toContain(user);
  expect(dockerfile).toMatch(/^HEALTHCHECK [\s\S]*\/healthz/m);
  expect(dockerfile).toContain('COPY docker/gateway.conf /etc/upload-gateway/gateway.conf');
  // The upload page's static files (upload_demo_page on in docker/gateway.conf).
  expect(dockerfile).toContain('COPY page ./page');
  expect(loadConfigFile(GATEWAY_CONF).demoPage).toBe(true);
  expect(composeCommand('x-gateway')).toEqual(['node', 'bin/upload-gateway.js', '--config', '/etc/upload-gateway/gateway.conf']);
  expect(composeCommand('backend').slice(0, 3)).toEqual(['node', 'bin/upload-gateway.js', 'sample-backend']);
  expect(composeCommand('redis')[0]).toBe('redis-server');
});

test('healthchecks: one word per argument (podman with docker-compose 1.x splits them at spaces)', () => {
  const tests = [...compose.matchAll(/^\s*test:\s*(\[.*\])\s*$/gm)].map((m) => JSON.parse(m[1]) as string[]);
  const image = /^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  expect(image).toBeDefined();
  tests.push(['CMD', ...(JSON.parse(image!) as string[])]);
  expect(tests.length).toBeGreaterThanOrEqual(3); // redis, backend, the image's
  for (const command of tests) {
    expect(command[0]).toBe('CMD');
    for (const arg of command) expect(arg).not.toMatch(/\s/);
  }
});

test('nginx: both replicas upstream, streaming bodies, the gateways\' body limit', () => {
  for (const service of GATEWAY_SERVICES) expect(nginxSite).toMatch(new RegExp(`^\\s*server ${service}:8080\\b`, 'm'));
  expect(nginxSite).toMatch(/^\s*proxy_request_buffering off;/m);
  const gateway = loadConfigFile(GATEWAY_CONF);
  expect(gateway.listen.port).toBe(8080);
  const limit = /^\s*client_max_body_size\s+(\S+);/m.exec(nginxSite)?.[1];
  expect(parseSize(limit!)).toBe(gateway.clientMaxBodySize);
});

test('the README\'s Deploy section shows the compose file as it is', () => {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const deploy = readme.slice(readme.indexOf('\n## Deploy\n'));
  const shown = /```yaml\n([\s\S]*?)```/.exec(deploy)?.[1];
  expect(shown).toBeDefined();
  // The file without its header comment.
  const lines = compose.split('\n');
  expect(shown).toBe(lines.slice(lines.findIndex((line) => line !== '' && !line.startsWith('#'))).join('\n'));
});

test('the gateway configuration: Redis state, the store on the shared volume, the backend service', () => {
  const config = loadConfigFile(GATEWAY_CONF);
  expect(config.locations).toHaveLength(1);
  const [location] = config.locations;
  expect(location.stateRedis).toBe('redis://redis:6379/0');
  expect(location.store.dir.startsWith(`${VOLUME}/`)).toBe(true);
  expect(location.uploadPass.origin).toBe('http://backend:9000');
  expect(composeCommand('backend')).toContain(location.store.dir);
});

test('graceful stop: the image and the replicas stop with SIGQUIT, given longer than worker_shutdown_timeout', () => {
  expect(/^STOPSIGNAL (\S+)$/m.exec(dockerfile)?.[1]).toBe('SIGQUIT');
  const gateway = /^x-gateway: &gateway\n([\s\S]*?)\n\S/m.exec(compose)?.[1] ?? '';
  expect(/^ {2}stop_signal: (\S+)$/m.exec(gateway)?.[1]).toBe('SIGQUIT');
  const grace = /^ {2}stop_grace_period: (\S+)$/m.exec(gateway)?.[1];
  expect(parseTime(grace!)).toBeGreaterThan(loadConfigFile(GATEWAY_CONF).shutdownTimeoutMs);
});

test('prometheus scrapes both gateway services at their upload_metrics location, which nginx does not pass on', () => {
  const prometheus = readFileSync(PROMETHEUS_CONF, 'utf8');
  const config = loadConfigFile(GATEWAY_CONF);
  expect(config.metricsLocations.map((m) => m.path)).toEqual(['/metrics']);
  expect(/^\s*metrics_path: (\S+)$/m.exec(prometheus)?.[1]).toBe('/metrics');
  expect(/targets: (\[.*\])/.exec(prometheus)?.[1]).toBe(JSON.stringify(GATEWAY_SERVICES.map((s) => `${s}:8080`)).replace(/,/g, ', '));
  expect(compose).toContain('- ./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  expect(nginxSite).not.toMatch(/location[^{]*\/metrics/);
});
