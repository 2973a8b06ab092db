/**
 * Which session store and locker serve a location, chosen at start-up: the embedded file state
 * (`upload_state_store`, one process, in-process locks) or Redis (`upload_state_redis`, shared by
 * several gateway instances). Also the start-up checks and the health check of what they need:
 * writable store directories, a reachable Redis, and (with Redis) a data store that really is the
 * directory the other instances use.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayConfig, LocationConfig } from '../config/types';
import { FileSessionStore } from './file-session-store';
import { MemoryLocker } from './memory-locker';
import { createRedisClient, DEFAULT_REDIS_PREFIX, describeRedisUrl, pingRedis, RedisLocker, RedisSessionStore, type RedisLockerOptions } from './redis-state';
import type { Locker, SessionStore } from './types';

export interface StateBackendOptions {
  log: Logger;
  /** Session store factory (replaces both the file and the Redis state). */
  sessionStore?: (location: LocationConfig) => SessionStore;
  /** One locker for every location (replaces the in-process and the Redis lockers). */
  locker?: Locker;
  /** Overrides whether other instances may share a location's state (default: only with Redis). */
  singleInstance?: boolean;
  /** Redis key prefix and lease times (tests shorten them). */
  redis?: RedisLockerOptions;
}

/** With Redis: how long the shared-store marker lives without an instance renewing it. */
const MARKER_TTL_MS = 60_000;
export const SHARED_MARKER = '.upload-gateway-shared';

export class StateBackends {
  private readonly stores = new Map<string, { store: SessionStore; locker: Locker }>();
  private readonly clients = new Map<string, Redis>();
  private readonly redisLockers = new Map<string, RedisLocker>();
  private readonly memoryLocker = new MemoryLocker();
  private readonly markers: Array<{ client: Redis; key: string; file: string }> = [];
  private markerTimer: NodeJS.Timeout | null = null;
  private lastRedisError = 0;

  constructor(private readonly options: StateBackendOptions) {}

  /** The one client of `url` (shared by session state, locks and progress zones; closed by `close`). */
  redisClient(url: string): Redis {
    let client = this.clients.get(url);
    if (!client) {
      client = createRedisClient(url, (err) => {
        // ioredis reports every failed reconnect: log at most one every 10 s.
        if (Date.now() - this.lastRedisError < 10_000) return;
        this.lastRedisError = Date.now();
        this.options.log.warn({ redis: describeRedisUrl(url), err: err.message }, 'Redis connection error');
      });
      this.clients.set(url, client);
    }
    return client;
  }

  prefix(): string {
    return this.options.redis?.prefix ?? DEFAULT_REDIS_PREFIX;
  }

  private entry(location: LocationConfig): { store: SessionStore; locker: Locker } {
    const url = location.stateRedis;
    const key = url ? `redis\0${url}` : `file\0${location.stateStore.dir}\0${location.stateStore.levels.join(',')}`;
    let entry = this.stores.get(key);
    if (!entry) {
      const store =
        this.options.sessionStore?.(location) ??
        (url
          ? new RedisSessionStore(this.redisClient(url), this.prefix())
          : new FileSessionStore(location.stateStore.dir, location.stateStore.levels, location.fsync, location.storeAccess));
      entry = { store, locker: this.lockerFor(location) };
      this.stores.set(key, entry);
    }
    return entry;
  }

  private lockerFor(location: LocationConfig): Locker {
    if (this.options.locker) return this.options.locker;
    const url = location.stateRedis;
    if (!url) return this.memoryLocker;
    let locker = this.redisLockers.get(url);
    if (!locker) {
      locker = new RedisLocker(this.redisClient(url), { ...this.options.redis, prefix: this.prefix() });
      this.redisLockers.set(url, locker);
    }
    return locker;
  }

  sessions(location: LocationConfig): SessionStore {
    return this.entry(location).store;
  }

  locker(location: LocationConfig): Locker {
    return this.entry(location).locker;
  }

  singleInstance(location: LocationConfig): boolean {
    return this.options.singleInstance ?? !location.stateRedis;
  }

  /** Every distinct store of the configuration, with the locker that guards it (for the expiry sweep). */
  all(config: GatewayConfig): Array<{ store: SessionStore; locker: Locker }> {
    return [...new Set(config.locations.map((l) => this.entry(l)))];
  }

  /** Directories the gateway writes: data stores, file state stores, the sample backend's files. */
  private directories(config: GatewayConfig): Array<[string, string]> {
    const dirs = new Map<string, string>();
    for (const l of config.locations) {
      dirs.set(l.store.dir, 'upload_store');
      if (!l.stateRedis && !this.options.sessionStore) dirs.set(l.stateStore.dir, 'upload_state_store');
    }
    if (config.sampleBackend) dirs.set(config.sampleBackend.filesDir, 'sample backend files');
    return [...dirs];
  }

  /**
   * Start-up: every directory is created and really written (a probe file, fsynced and removed),
   * Redis answers, and with Redis each data store is the one the other instances see. Throws with
   * a clear reason otherwise.
   */
  async start(config: GatewayConfig): Promise<void> {
    for (const [dir, what] of this.directories(config)) {
      try {
        await probeWritable(dir);
      } catch (err) {
        throw new Error(`${what} directory ${dir} is not writable: ${(err as Error).message}`);
      }
    }
    const shared = new Map<string, string>();
    for (const l of config.locations) if (l.stateRedis) shared.set(l.store.dir, l.stateRedis);
    for (const l of config.locations) this.entry(l);
    for (const [url, client] of this.clients) {
      if (client.status === 'wait') await client.connect().catch(() => undefined);
      const problem = await pingRedis(client, 5000);
      if (problem) throw new Error(`upload_state_redis ${describeRedisUrl(url)}: Redis does not answer: ${problem}`);
    }
    for (const [dir, url] of shared) {
      const client = this.redisClient(url);
      this.markers.push({ client, ...(await this.checkSharedStore(client, dir, url)) });
    }
    if (this.markers.length > 0) {
      this.markerTimer = setInterval(() => void this.renewMarkers(), MARKER_TTL_MS / 3);
      this.markerTimer.unref();
    }
  }

  /**
   * Several instances share one data store (a volume, NFS): session records name files in it, and
   * the instance completing an upload reads what others wrote. The first instance writes a random
   * token into `<store>/.upload-gateway-shared` and into Redis; every later one must find the same
   * token in its own view of the directory.
   */
  private async checkSharedStore(client: Redis, dir: string, url: string): Promise<{ key: string; file: string }> {
    const key = `${this.prefix()}store:${dir}`;
    const file = path.join(dir, SHARED_MARKER);
    let token: string | null = null;
    let seen: string | null = null;
    for (let attempt = 0; attempt < 30; attempt++) {
      token = await client.get(key);
      if (token === null) {
        const mine = randomBytes(16).toString('hex');
        if ((await client.set(key, mine, 'PX', MARKER_TTL_MS, 'NX')) === 'OK') {
          await writeAtomically(file, mine);
          return { key, file };
        }
        continue;
      }
      seen = await fs.readFile(file, 'utf8').catch(() => null);
      if (seen === token) return { key, file };
      // Another instance may be writing the marker right now.
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `upload_store ${dir} is not the directory the other gateway instances sharing ${describeRedisUrl(url)} use ` +
        `(its ${SHARED_MARKER} ${seen === null ? 'is missing' : 'holds another token'}): with upload_state_redis, ` +
        'every instance must mount the same shared directory (a volume, NFS) at the same path',
    );
  }

  private async renewMarkers(): Promise<void> {
    for (const { client, key, file } of this.markers) {
      try {
        const token = await fs.readFile(file, 'utf8');
        await client.set(key, token, 'PX', MARKER_TTL_MS);
      } catch (err) {
        this.options.log.warn({ file, err: (err as Error).message }, 'cannot renew the shared-store marker');
      }
    }
  }

  /** `/healthz`: null when every directory takes a write and every Redis answers PING, else the reason. */
  async health(config: GatewayConfig): Promise<string | null> {
    for (const [dir, what] of this.directories(config)) {
      try {
        await probeWritable(dir);
      } catch (err) {
        return `${what} directory ${dir} is not writable: ${(err as Error).message}`;
      }
    }
    for (const [url, client] of this.clients) {
      const problem = await pingRedis(client, 1000);
      if (problem) return `Redis ${describeRedisUrl(url)} does not answer: ${problem}`;
    }
    return null;
  }

  async close(): Promise<void> {
    if (this.markerTimer) clearInterval(this.markerTimer);
    for (const { store } of this.stores.values()) await store.close();
    if (this.options.locker) await this.options.locker.close();
    for (const locker of this.redisLockers.values()) await locker.close();
    await this.memoryLocker.close();
    for (const client of this.clients.values()) {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else if (client.status !== 'end') client.disconnect();
    }
  }
}

/** Creates `dir` if needed and writes, fsyncs and removes a probe file in it. */
export async function probeWritable(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, `.upload-gateway-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile('probe\n');
    await handle.datasync();
  } finally {
    await handle.close();
    await fs.rm(file, { force: true });
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temp, text, { mode: 0o644 });
  await fs.rename(temp, file);
}
