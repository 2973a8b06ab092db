/**
 * A real redis-server (Debian package `redis-server`) started for a test: its own port, no
 * persistence, a temporary working directory. A missing binary fails the test loudly (never a skip).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import Redis from 'ioredis';
import { findProgram, freePort, tempDir, waitForPort } from './process';

export const REDIS_INSTALL_HINT = 'install the Debian package: `apt-get install -y redis-server` (.ci/run does), or set REDIS_SERVER_BIN to a redis-server binary';

/** The redis-server binary: $REDIS_SERVER_BIN, else `redis-server` on PATH, else /usr/bin or /usr/local/bin. Throws if none. */
export function findRedisServer(): string {
  return findProgram('redis-server', 'REDIS_SERVER_BIN', ['/usr/bin/redis-server', '/usr/local/bin/redis-server'], REDIS_INSTALL_HINT);
}

export interface RedisProcess {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  output(): string;
  /** A new client (the caller quits it). */
  client(): Redis;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port (`extraArgs` are appended, e.g. persistence settings). */
export async function startRedis(options: { port?: number; extraArgs?: string[]; dir?: string } = {}): Promise<RedisProcess> {
  const bin = findRedisServer();
  const dir = options.dir ?? tempDir('redis-');
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.extraArgs ?? [])];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot run ${bin}: ${err.message}; ${REDIS_INSTALL_HINT}`))));
  const exitedEarly = exited.then((): never => {
    throw new Error(`redis-server exited during start-up (code ${child.exitCode}):\n${output}`);
  });
  spawnError.catch(() => undefined);
  exitedEarly.catch(() => undefined);
  try {
    await Promise.race([waitForPort(port, 10_000), spawnError, exitedEarly]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const url = `redis://127.0.0.1:${port}/0`;
  return {
    port, url, dir, child,
    output: () => output,
    client: () => new Redis(url, { maxRetriesPerRequest: 1 }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
