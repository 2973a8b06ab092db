/**
 * Pieces of the operations tests: a real gateway process with a configuration of the test's own,
 * the Prometheus exposition read and checked by a real scraper (`promtool check metrics`, Debian
 * package `prometheus`), and raw requests from a chosen local address.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { findProgram, freePort, startGateway, tempDir, type GatewayProcess } from '../helpers/process';
import { httpRequest, rawRequest, type RawResponse } from '../helpers/gateway';
import { send } from '../helpers/segments';

export const PROMETHEUS_HINT = 'install the Debian package: `apt-get install -y prometheus` (.ci/run does), or set PROMTOOL_BIN / PROMETHEUS_BIN';

export function findPromtool(): string {
  return findProgram('promtool', 'PROMTOOL_BIN', ['/usr/bin/promtool'], PROMETHEUS_HINT);
}

export interface OpsGateway extends GatewayProcess {
  dir: string;
  store: string;
  state: string;
  configFile: string;
}

/**
 * A gateway process on a free port: `config(paths)` is the whole file (`listen` is prepended);
 * `paths` names a store and a state directory made for it, and the port.
 */
export async function startOpsGateway(
  config: (paths: { dir: string; store: string; state: string; port: number }) => string,
  options: { env?: NodeJS.ProcessEnv; listen?: string } = {},
): Promise<OpsGateway> {
  const dir = tempDir('ops-');
  const store = path.join(dir, 'store');
  const state = path.join(dir, 'state');
  mkdirSync(store);
  mkdirSync(state);
  const port = await freePort();
  const text = `listen ${options.listen ?? '127.0.0.1'}:${port};\nclient_max_body_size 100m;\n${config({ dir, store, state, port })}`;
  const gateway = await startGateway(text, { port, dir, env: options.env });
  return { ...gateway, dir, store, state, configFile: path.join(dir, `gateway-${port}.conf`) };
}

/** GET `urlPath` from `localAddress` (a loopback address of the test's choice). */
export function getFrom(port: number, urlPath: string, localAddress = '127.0.0.1', headers: Array<[string, string]> = []): Promise<RawResponse> {
  return rawRequest(port, httpRequest('GET', urlPath, headers), { host: localAddress.includes(':') ? '::1' : '127.0.0.1', localAddress });
}

/** The exposition of `/metrics` (or `urlPath`). */
export async function scrape(port: number, urlPath = '/metrics'): Promise<string> {
  const answer = await send(port, httpRequest('GET', urlPath, []), Buffer.alloc(0), { timeoutMs: 10_000 });
  if (answer.status !== 200) throw new Error(`${urlPath} answered ${answer.status}: ${answer.body.toString()}`);
  return answer.body.toString();
}

/** `promtool check metrics` on an exposition: its exit code and what it said. */
export function promtoolCheck(exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(findPromtool(), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
    child.stdin.end(exposition);
  });
}

/** The value of the sample `name{labels…}` (every given label must match; others may be there), or undefined. */
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Whether a new connection to `port` is refused. */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(true));
  });
}

/** Polls `check` until it returns true (or fails the test after `ms`). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
