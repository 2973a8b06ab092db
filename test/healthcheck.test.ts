/**
 * `upload-gateway healthcheck URL`, the containers' healthcheck command (docker/Dockerfile,
 * docker/docker-compose.yml): exit 0 on a 200, 1 with the reason otherwise, 2 on bad usage.
 * Real processes: the built binary against the real sample backend and plain HTTP servers.
 *
 * Needs the built gateway (`npm run build`; `npm test` does it in pretest).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { REPO_ROOT, freePort, run, startService, tempDir, type ServiceProcess } from './helpers/process';

const BIN = path.join(REPO_ROOT, 'bin/upload-gateway.js');

function healthcheck(...args: string[]): Promise<{ code: number | null; output: string }> {
  return run(process.execPath, [BIN, 'healthcheck', ...args], { timeoutMs: 20_000 });
}

/** A plain HTTP server on loopback; `handler` answers (or never does). */
async function serve(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let backend: ServiceProcess;

beforeAll(async () => {
  const dir = tempDir('healthcheck-');
  const port = await freePort();
  backend = await startService('backend', process.execPath, [BIN, 'sample-backend', '--listen', `127.0.0.1:${port}`, '--files', path.join(dir, 'files'), '--store', path.join(dir, 'store')], { port, cwd: dir });
});

afterAll(async () => {
  await backend?.stop();
});

test('200 from the sample backend\'s /healthz: exit 0, nothing printed', async () => {
  const result = await healthcheck(`${backend.url}/healthz`);
  expect(result).toEqual({ code: 0, output: '' });
});

test('a 503 with a reason: exit 1, the status and the reason on stderr', async () => {
  const server = await serve((_, res) => {
    res.writeHead(503, { 'Content-Type': 'text/plain' });
    res.end('store /var/lib/upload-gateway/store: EROFS\n');
  });
  try {
    const result = await healthcheck(server.url);
    expect(result.code).toBe(1);
    expect(result.output).toBe(`upload-gateway healthcheck: ${server.url}: 503 store /var/lib/upload-gateway/store: EROFS\n`);
  } finally {
    await server.close();
  }
});

test('nothing listening: exit 1 with the connection error', async () => {
  const url = `http://127.0.0.1:${await freePort()}/healthz`;
  const result = await healthcheck(url);
  expect(result.code).toBe(1);
  expect(result.output).toContain('ECONNREFUSED');
});

test('no answer: exit 1 after 5 s', async () => {
  const server = await serve(() => undefined);
  try {
    const started = Date.now();
    const result = await healthcheck(server.url);
    expect(result.code).toBe(1);
    expect(result.output).toContain('no answer in 5000 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
  } finally {
    await server.close();
  }
}, 20_000);

test('usage errors: exit 2 (no URL, two URLs, not http)', async () => {
  for (const args of [[], ['http://a/', 'http://b/'], ['https://127.0.0.1/healthz'], ['not a url']]) {
    const result = await healthcheck(...args);
    expect(result.code).toBe(2);
    expect(result.output).toContain('usage: upload-gateway healthcheck URL');
  }
});
