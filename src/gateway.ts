import { promises as fs, constants as fsConstants } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import pino, { type Logger } from 'pino';
import type { GatewayConfig, LocationConfig } from './config/types';
import { UploadError } from './protocol/http-errors';
import { createHttpServer } from './http/server';
import { errorResponder } from './http/error-responder';
import { matchLocation } from './http/locations';
import { uploadLocation, type MultipartHandler } from './upload/location-handler';
import { handleMultipartUpload } from './upload/multipart-upload';
import { expireSession, type UploadServices } from './upload/services';
import { FileSessionStore } from './state/file-session-store';
import { MemoryLocker } from './state/memory-locker';
import type { Locker, SessionStore } from './state/types';
import { TempCounter } from './store/temp-names';
import { InOrderDigests } from './store/digests';
import { sampleBackendRouter } from './sample-backend';

export interface GatewayOptions {
  logger?: Logger;
  /** Session store factory per `upload_state_store` (default: durable files). */
  sessionStore?: (location: LocationConfig) => SessionStore;
  locker?: Locker;
  /** False when several instances share state and locks (then hand-off claims expire by time only). */
  singleInstance?: boolean;
  multipart?: MultipartHandler | null;
  /** Accept bare-LF request heads like nginx (default true). */
  lenientHttpParser?: boolean;
}

export interface Gateway {
  app: Koa;
  server: Server;
  config: GatewayConfig;
  /** Checks the stores are writable, starts the expiry sweep and listens on `config.listen`. */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Removes expired sessions now (also runs periodically while listening). */
  sweepExpired(): Promise<number>;
}

/** Composes the gateway: storage and coordination are chosen here, the protocol code knows neither. */
export function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Gateway {
  const log = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const stores = new Map<string, SessionStore>();
  const storeFor = (location: LocationConfig): SessionStore => {
    const key = `${location.stateStore.dir}\0${location.stateStore.levels.join(',')}`;
    let store = stores.get(key);
    if (!store) {
      store = options.sessionStore?.(location) ?? new FileSessionStore(location.stateStore.dir, location.stateStore.levels, location.fsync, location.storeAccess);
      stores.set(key, store);
    }
    return store;
  };
  const services: UploadServices = {
    sessions: storeFor,
    locker: options.locker ?? new MemoryLocker(),
    counter: new TempCounter(),
    inOrderDigests: new InOrderDigests(),
    instanceId: randomUUID(),
    singleInstance: options.singleInstance ?? true,
    log,
    expireSession,
  };

  const app = new Koa();
  app.silent = true;
  app.use(errorResponder(log));
  if (config.sampleBackend) {
    const router = sampleBackendRouter(config.sampleBackend.filesDir, config.locations[0].store.dir);
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  const handlers = new Map(config.locations.map((l) => [l, uploadLocation(l, services, options.multipart === undefined ? handleMultipartUpload : options.multipart)]));
  app.use(async (ctx, next) => {
    const q = ctx.req.url?.indexOf('?') ?? -1;
    const uriPath = q < 0 ? ctx.req.url ?? '/' : ctx.req.url!.slice(0, q);
    const location = matchLocation(config.locations, uriPath);
    if (!location) throw new UploadError(404, `no upload location matches ${uriPath}`);
    return handlers.get(location)!(ctx, next);
  });

  const server = createHttpServer(app.callback(), { lenient: options.lenientHttpParser ?? true });
  let sweepTimer: NodeJS.Timeout | null = null;

  async function sweepExpired(): Promise<number> {
    let removed = 0;
    const now = Date.now();
    for (const location of config.locations) storeFor(location);
    for (const store of stores.values()) {
      if (store instanceof FileSessionStore) await store.sweepTemporaries();
      for await (const id of store.ids()) {
        const record = await store.get(id).catch(() => undefined);
        if (!record || record.expiresAt > now) continue;
        const lease = await services.locker.lock(id);
        try {
          const current = await store.get(id);
          if (current && current.expiresAt <= Date.now()) {
            await expireSession(current, store);
            removed++;
          }
        } finally {
          await lease.release();
        }
      }
    }
    return removed;
  }

  return {
    app,
    server,
    config,
    sweepExpired,
    async listen() {
      await checkStoresWritable(config);
      const every = Math.max(1000, Math.min(60_000, ...config.locations.map((l) => Math.min(l.sessionTimeoutMs, l.completedRetentionMs) / 4)));
      sweepTimer = setInterval(() => sweepExpired().catch((err) => log.error({ err }, 'expiry sweep failed')), every);
      sweepTimer.unref();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      log.info({ address: `${address.address}:${address.port}`, config: config.source }, 'upload gateway listening');
      return address;
    },
    async close() {
      if (sweepTimer) clearInterval(sweepTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const store of stores.values()) await store.close();
      await services.locker.close();
    },
  };
}

/** Fails start-up clearly when a store directory cannot be created or written. */
async function checkStoresWritable(config: GatewayConfig): Promise<void> {
  const dirs = new Set<string>();
  for (const l of config.locations) {
    dirs.add(l.store.dir);
    dirs.add(l.stateStore.dir);
  }
  if (config.sampleBackend) dirs.add(config.sampleBackend.filesDir);
  for (const dir of dirs) {
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.access(dir, fsConstants.W_OK);
    } catch (err) {
      throw new Error(`store directory ${dir} is not writable: ${(err as Error).message}`);
    }
  }
}
