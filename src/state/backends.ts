/**
 * Which session engine serves a location, chosen at start-up: the embedded file state
 * (`upload_state_store`, one process, journals) or Redis (`upload_state_redis`, shared by
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
import { DataFilePool } from '../store/data-file-pool';
import { probeMaxFileSize, writeFileAtomically } from '../store/files';
import type { EnginePolicy, SessionEngine } from './engine';
import { FileSessionEngine } from './file-engine';
import { createRedisClient, DEFAULT_REDIS_PREFIX, describeRedisUrl, pingRedis } from './redis-client';
import { RedisSessionEngine } from './redis-engine';
import { IGNORE_STATE, type StateObserver } from './observer';

export interface StateBackendOptions {
  log: Logger;
  /** Identifies this gateway process in hand-off claims. */
  instanceId: string;
  /** Redis key prefix and reservation lifetime (tests shorten it). */
  redis?: { prefix?: string; reserveTtlMs?: number };
  /** Told about the engines' work (metrics). */
  observer?: StateObserver;
}

/** With Redis: how long the shared-store marker lives without an instance renewing it. */
const MARKER_TTL_MS = 60_000;
export const SHARED_MARKER = '.upload-gateway-shared';

/** A location's session rules, from its configuration. */
export function enginePolicy(location: LocationConfig): EnginePolicy {
  return {
    sessionTimeoutMs: location.sessionTimeoutMs,
    completedRetentionMs: location.completedRetentionMs,
    // A claim older than one whole hand-off attempt (plus slack) was abandoned by a dead instance.
    handoffTimeoutMs: location.backendConnectTimeoutMs + location.backendReadTimeoutMs + 10_000,
    fileMode: location.storeAccess,
    durable: location.fsync,
  };
}

export class StateBackends {
  /** Open data files, shared by every engine (files are keyed by path). */
  readonly dataFiles: DataFilePool;
  private readonly engines = new Map<string, SessionEngine>();
  private readonly clients = new Map<string, Redis>();
  private readonly markers: Array<{ client: Redis; key: string; file: string }> = [];
  private markerTimer: NodeJS.Timeout | null = null;
  private lastRedisError = 0;
  private readonly maxFileSizes = new Map<string, number>();
  /** Incomplete sessions per engine, as each one's last sweep counted them. */
  private readonly openSessions = new Map<string, number>();

  private readonly observer: StateObserver;

  constructor(private readonly options: StateBackendOptions) {
    this.observer = options.observer ?? IGNORE_STATE;
    this.dataFiles = new DataFilePool(undefined, undefined, (seconds) => this.observer.synced('data', seconds));
  }

  /** The one client of `url` (shared by session state and progress zones; closed by `close`). */
  redisClient(url: string): Redis {
    let client = this.clients.get(url);
    if (!client) {
      client = createRedisClient(url, (err) => {
        this.observer.redisFailed('connection');
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

  /** The engine behind a location: its `upload_state_store` directory, or its `upload_state_redis`. */
  engine(location: LocationConfig): SessionEngine {
    const url = location.stateRedis;
    const key = url ? `redis\0${url}` : `file\0${location.stateStore.dir}\0${location.stateStore.levels.join(',')}`;
    let engine = this.engines.get(key);
    if (!engine) {
      const { instanceId } = this.options;
      const { dataFiles } = this;
      // Each engine counts its own sessions; the observer hears the sum over the engines.
      const base = this.observer;
      const observer: StateObserver = {
        journalAppended: (seconds) => base.journalAppended(seconds),
        synced: (file, seconds) => base.synced(file, seconds),
        redisRoundTrip: (operation, seconds) => base.redisRoundTrip(operation, seconds),
        redisFailed: (operation) => base.redisFailed(operation),
        sessionOpened: () => base.sessionOpened(),
        sessionClosed: (reason) => base.sessionClosed(reason),
        sessionsCounted: (open) => this.sessionsCounted(key, open),
      };
      engine = url
        ? new RedisSessionEngine(this.redisClient(url), { prefix: this.prefix(), instanceId, dataFiles, observer, reserveTtlMs: this.options.redis?.reserveTtlMs })
        : new FileSessionEngine({ dir: location.stateStore.dir, levels: location.stateStore.levels, instanceId, dataFiles, observer });
      this.engines.set(key, engine);
    }
    return engine;
  }

  private sessionsCounted(engine: string, open: number): void {
    this.openSessions.set(engine, open);
    let total = 0;
    for (const count of this.openSessions.values()) total += count;
    this.observer.sessionsCounted(total);
  }

  /** The largest file the store directory's file system holds (probed at start-up; unknown: no limit). */
  maxFileSize(storeDir: string): number {
    return this.maxFileSizes.get(storeDir) ?? Number.MAX_SAFE_INTEGER;
  }

  /** Whether the location's state is shared with other instances. */
  shared(location: LocationConfig): boolean {
    return location.stateRedis !== null;
  }

  /**
   * Removes expired sessions of every engine; each engine is swept with the strictest policy of
   * the locations that use it.
   */
  async sweep(config: GatewayConfig): Promise<number> {
    const policies = new Map<SessionEngine, EnginePolicy>();
    for (const location of config.locations) {
      const engine = this.engine(location);
      const policy = enginePolicy(location);
      const known = policies.get(engine);
      policies.set(engine, known ? {
        ...known,
        sessionTimeoutMs: Math.min(known.sessionTimeoutMs, policy.sessionTimeoutMs),
        completedRetentionMs: Math.min(known.completedRetentionMs, policy.completedRetentionMs),
        durable: known.durable || policy.durable,
      } : policy);
    }
    let removed = 0;
    for (const [engine, policy] of policies) removed += await engine.sweep(policy);
    return removed;
  }

  /** Directories the gateway writes: data stores, file state stores, the sample backend's files. */
  private directories(config: GatewayConfig): Array<[string, string]> {
    const dirs = new Map<string, string>();
    for (const l of config.locations) {
      dirs.set(l.store.dir, 'upload_store');
      if (!l.stateRedis) dirs.set(l.stateStore.dir, 'upload_state_store');
    }
    if (config.sampleBackend) dirs.set(config.sampleBackend.filesDir, 'sample backend files');
    return [...dirs];
  }

  /**
   * Start-up: every directory is created and really written (a probe file, fsynced and removed),
   * Redis answers, and with Redis each data store is the one the other instances see. Throws with
   * a clear reason otherwise. Again for a reloaded configuration: what it adds is checked too.
   */
  async start(config: GatewayConfig): Promise<void> {
    for (const [dir, what] of this.directories(config)) {
      try {
        await probeWritable(dir);
      } catch (err) {
        throw new Error(`${what} directory ${dir} is not writable: ${(err as Error).message}`);
      }
    }
    for (const l of config.locations) {
      if (!this.maxFileSizes.has(l.store.dir)) this.maxFileSizes.set(l.store.dir, await probeMaxFileSize(l.store.dir));
    }
    const shared = new Map<string, string>();
    for (const l of config.locations) if (l.stateRedis) shared.set(l.store.dir, l.stateRedis);
    for (const l of config.locations) this.engine(l);
    for (const [url, client] of this.clients) {
      if (client.status === 'wait') await client.connect().catch(() => undefined);
      const problem = await pingRedis(client, 5000);
      if (problem) throw new Error(`upload_state_redis ${describeRedisUrl(url)}: Redis does not answer: ${problem}`);
    }
    for (const [dir, url] of shared) {
      // A reload starts again: the stores checked already keep their marker.
      if (this.markers.some((m) => m.file === path.join(dir, SHARED_MARKER))) continue;
      const client = this.redisClient(url);
      this.markers.push({ client, ...(await this.checkSharedStore(client, dir, url)) });
    }
    if (this.markers.length > 0 && !this.markerTimer) {
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
          await writeFileAtomically(file, Buffer.from(mine), { fileMode: 0o644, durable: false });
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
    for (const engine of this.engines.values()) await engine.close();
    await this.dataFiles.close();
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
