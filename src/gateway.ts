import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import pino, { type Logger } from 'pino';
import type { GatewayConfig } from './config/types';
import { HttpError } from './protocol/http-errors';
import { createHttpServer, setSendTimeout } from './http/server';
import { errorResponder } from './http/error-responder';
import { matchLocation } from './http/locations';
import { uploadLocation, type MultipartHandler } from './upload/location-handler';
import { handleMultipartUpload } from './upload/multipart-upload';
import type { UploadServices } from './upload/services';
import { resumableProgressIdentity } from './upload/resumable-protocols';
import { enginePolicy, StateBackends } from './state/backends';
import { healthz } from './http/healthz';
import { TempCounter } from './store/temp-names';
import { InOrderDigests } from './store/digests';
import { sampleBackendRouter } from './sample-backend';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { ProgressZones } from './progress/zones';
import { trackUploads } from './progress/tracking';
import { reportUploads } from './progress/report';
import type { ProgressZone } from './progress/types';
import { uploadPage } from './http/upload-page';

export interface GatewayOptions {
  logger?: Logger;
  /** Redis key prefix and reservation lifetime for `upload_state_redis` (tests shorten it). */
  redis?: { prefix?: string; reserveTtlMs?: number };
  multipart?: MultipartHandler | null;
  /** Accept bare-LF request heads like nginx (default true); the parser is strict either way. */
  bareLfHeads?: boolean;
}

export interface Gateway {
  app: Koa;
  server: Server;
  config: GatewayConfig;
  /** Checks the stores are writable (and Redis answers), starts the expiry sweep and listens on `config.listen`. */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Removes expired sessions now (also runs periodically while listening). */
  sweepExpired(): Promise<number>;
  /** The `upload_progress` zone of that name (in process or in Redis). */
  progress(zone: string): ProgressZone | undefined;
}

/** Composes the gateway: storage and coordination are chosen here, the protocol code knows neither. */
export function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Gateway {
  const log = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const instanceId = randomUUID();
  const state = new StateBackends({ log, instanceId, redis: options.redis });
  const zones = new ProgressZones(config, state);
  const policies = new Map(config.locations.map((l) => [l, enginePolicy(l)]));
  const services: UploadServices = {
    sessions: (location) => state.engine(location),
    policy: (location) => policies.get(location) ?? enginePolicy(location),
    actor: (location) => ({ instanceId, singleInstance: !state.shared(location) }),
    maxFileSize: (location) => state.maxFileSize(location.store.dir),
    counter: new TempCounter(),
    inOrderDigests: new InOrderDigests(),
    log,
  };

  const app = new Koa();
  app.silent = true;
  app.use(errorResponder(log));
  app.use(healthz(() => state.health(config)));
  if (config.sampleBackend) {
    const router = sampleBackendRouter(config.sampleBackend.filesDir, config.locations[0].store.dir);
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  // Browser client bundle (built by `npm run build` into dist/client/), served before the upload locations.
  const clientRouter = new Router();
  clientRouter.get('/client.js', async (ctx) => {
    const bundle = await readFile(path.resolve(__dirname, '..', 'dist', 'client', 'client.js')).catch(() => null);
    if (!bundle) throw new HttpError(404, 'the client bundle is not built: run npm run build');
    ctx.type = 'application/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = bundle;
  });
  app.use(clientRouter.routes());
  // (end of the client bundle route)
  // The upload page at / (upload_demo_page on).
  app.use(uploadPage(config));
  // Upload locations (tracked in their upload_progress zone with track_uploads) and progress
  // locations (report_uploads), matched together as nginx matches locations.
  const multipart = options.multipart === undefined ? handleMultipartUpload : options.multipart;
  const served: Array<{ match: 'exact' | 'prefix'; path: string; sendTimeoutMs: number; handler: Middleware }> = [
    ...config.locations.map((l) => {
      const handler = uploadLocation(l, services, multipart);
      const zone = l.trackUploads ? zones.get(l.trackUploads.zone) : undefined;
      const identify = l.tus ? resumableProgressIdentity(l, services) : undefined;
      return { match: l.match, path: l.path, sendTimeoutMs: l.sendTimeoutMs, handler: zone ? trackUploads(l, zone, { instanceId, log, identify })(handler) : handler };
    }),
    ...config.progressLocations.map((p) => ({ match: p.match, path: p.path, sendTimeoutMs: p.sendTimeoutMs, handler: reportUploads(p, zones.get(p.zone)!) })),
  ];
  app.use(async (ctx, next) => {
    const q = ctx.req.url?.indexOf('?') ?? -1;
    const uriPath = q < 0 ? ctx.req.url ?? '/' : ctx.req.url!.slice(0, q);
    const location = matchLocation(served, uriPath);
    if (!location) throw new HttpError(404, `no upload location matches ${uriPath}`);
    setSendTimeout(ctx.res, location.sendTimeoutMs);
    return location.handler(ctx, next);
  });

  const server = createHttpServer(app.callback(), {
    clientHeaderTimeoutMs: config.clientHeaderTimeoutMs,
    sendTimeoutMs: config.sendTimeoutMs,
    shortestSendTimeoutMs: Math.min(config.sendTimeoutMs, ...served.map((l) => l.sendTimeoutMs)),
    bareLfHeads: options.bareLfHeads,
  });
  let sweepTimer: NodeJS.Timeout | null = null;

  function sweepExpired(): Promise<number> {
    return state.sweep(config);
  }

  return {
    app,
    server,
    config,
    sweepExpired,
    progress: (zone) => zones.get(zone),
    async listen() {
      try {
        await state.start(config);
      } catch (err) {
        await state.close();
        throw err;
      }
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
      await zones.close();
      await state.close();
    },
  };
}
