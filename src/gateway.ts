import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { GatewayConfig, LocationConfig, ServedLocationSettings } from './config/types';
import { HttpError } from './protocol/http-errors';
import { createHttpServer, setSendTimeout, updateHttpServer } from './http/server';
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
import { requestPath, routeFor, routeOf, routeRequests, type Route } from './http/route';
import { describeLocation } from './config/finalize';
import { corsHeaders, corsPreflight } from './http/cors';
import { authRequest } from './http/auth-request';
import { Drain } from './http/drain';
import { interruptRequest } from './upload/interrupt';
import { GatewayMetrics } from './ops/metrics';
import { GatewayLogs } from './ops/logs';
import { observationOf, observeRequest, requestObservers } from './ops/observe';

export interface GatewayOptions {
  logger?: Logger;
  /** Redis key prefix and reservation lifetime for `upload_state_redis` (tests shorten it). */
  redis?: { prefix?: string; reserveTtlMs?: number };
  multipart?: MultipartHandler | null;
  /** Accept bare-LF request heads like nginx (default true); the parser is strict either way. */
  bareLfHeads?: boolean;
}

export interface Gateway {
  /** The Koa app of the configuration in effect. */
  readonly app: Koa;
  server: Server;
  /** The configuration in effect (a reload replaces it). */
  readonly config: GatewayConfig;
  /** The gateway's own log (`error_log`). */
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** Checks the stores are writable (and Redis answers), starts the expiry sweep and listens on `config.listen`. */
  listen(): Promise<AddressInfo>;
  /** Stops at once: open connections are cut (what was acknowledged stays). */
  close(): Promise<void>;
  /**
   * Graceful stop (SIGTERM, SIGQUIT): stops accepting, lets the requests in flight finish within
   * `graceMs` (default `worker_shutdown_timeout`), answers the rest `503` + `Retry-After`, closes.
   */
  shutdown(graceMs?: number): Promise<void>;
  /**
   * Applies a new configuration (SIGHUP) without dropping a connection; throws, keeping the one in
   * effect, when it cannot. Given a function (re-reading the file), a file it refuses counts as a
   * refused reload too.
   */
  reload(config: GatewayConfig | (() => GatewayConfig)): Promise<void>;
  /** Opens the log files again at their paths (SIGUSR1, after a rotation). */
  reopenLogs(): void;
  /** Removes expired sessions now (also runs periodically while listening). */
  sweepExpired(): Promise<number>;
  /** The `upload_progress` zone of that name (in process or in Redis). */
  progress(zone: string): ProgressZone | undefined;
}

/** What one configuration serves: its Koa app and the top level's route. */
interface Composed {
  config: GatewayConfig;
  app: Koa;
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  top: Route;
  shortestSendTimeoutMs: number;
}

interface Served {
  match: 'exact' | 'prefix';
  path: string;
  sendTimeoutMs: number;
  handler: Middleware;
  route: Route;
}

/** A location as served: its handler (made knowing the location's nginx label) and its route. */
function servedAt(location: Omit<Served, 'handler' | 'route'> & Parameters<typeof routeFor>[1], handler: (label: string) => Middleware): Served {
  const label = describeLocation(location);
  return { match: location.match, path: location.path, sendTimeoutMs: location.sendTimeoutMs, handler: handler(label), route: routeFor(label, location) };
}

/** Composes the gateway: storage and coordination are chosen here, the protocol code knows neither. */
export function createGateway(initial: GatewayConfig, options: GatewayOptions = {}): Gateway {
  const instanceId = randomUUID();
  const logs = new GatewayLogs(instanceId, options.logger);
  logs.configure(initial);
  const log = logs.log;
  const metrics = new GatewayMetrics();
  const state = new StateBackends({ log, instanceId, redis: options.redis, observer: metrics });
  const drain = new Drain();
  const counter = new TempCounter();
  const inOrderDigests = new InOrderDigests();
  const multipart = options.multipart === undefined ? handleMultipartUpload : options.multipart;
  let zones = new ProgressZones(initial, state);
  const retiredZones: ProgressZone[] = [];

  /** nginx's access phase in front of a location's handler: `auth_request` (allow/deny ran with the route). */
  function guarded(label: string, settings: ServedLocationSettings, handler: Middleware): Middleware {
    if (!settings.authRequest) return handler;
    const auth = authRequest({ location: label, target: settings.authRequest, cache: settings.authRequestCache, log, observer: metrics });
    return (ctx, next) => auth(ctx, () => handler(ctx, next));
  }

  function compose(config: GatewayConfig, progressZones: ProgressZones): Composed {
    const policies = new Map(config.locations.map((l) => [l, enginePolicy(l)]));
    const services: UploadServices = {
      sessions: (location) => state.engine(location),
      policy: (location) => policies.get(location) ?? enginePolicy(location),
      actor: (location) => ({ instanceId, singleInstance: !state.shared(location) }),
      maxFileSize: (location) => state.maxFileSize(location.store.dir),
      counter,
      inOrderDigests,
      log,
    };
    const uploadHandler = (l: LocationConfig): Middleware => {
      const handler = uploadLocation(l, services, multipart);
      const zone = l.trackUploads ? progressZones.get(l.trackUploads.zone) : undefined;
      const identify = l.tus ? resumableProgressIdentity(l, services) : undefined;
      return zone ? trackUploads(l, zone, { instanceId, log, identify })(handler) : handler;
    };
    // Upload locations (tracked in their upload_progress zone with track_uploads), progress
    // locations (report_uploads) and metrics locations (upload_metrics), matched as nginx does.
    const served: Served[] = [
      ...config.locations.map((l) => servedAt(l, (label) => guarded(label, l, uploadHandler(l)))),
      ...config.progressLocations.map((p) => servedAt(p, (label) => guarded(label, p, reportUploads(p, progressZones.get(p.zone)!)))),
      ...config.metricsLocations.map((m) => servedAt({ ...m, sendTimeoutMs: config.sendTimeoutMs }, (label) => guarded(label, m, metrics.endpoint()))),
    ];
    const top = routeFor('', config);
    // The route a request matched (routeRequests, before anything else) names its location.
    const byRoute = new Map<Route, Served>(served.map((l) => [l.route, l]));

    const app = new Koa();
    app.silent = true;
    app.use(corsHeaders());
    app.use(observeRequest());
    app.use(errorResponder(log));
    app.use(drain.middleware());
    app.use(
      routeRequests(
        (uriPath) => matchLocation(served, uriPath)?.route ?? top,
        (ctx, route) => {
          const observation = observationOf(ctx.req);
          if (observation) Object.assign(observation, { location: route.label, accessLog: route.accessLog });
        },
      ),
    );
    app.use(corsPreflight());
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
    app.use(async (ctx, next) => {
      const location = byRoute.get(routeOf(ctx)!);
      if (!location) throw new HttpError(404, `no upload location matches ${requestPath(ctx)}`);
      setSendTimeout(ctx.res, location.sendTimeoutMs);
      return location.handler(ctx, next);
    });
    const shortestSendTimeoutMs = Math.min(config.sendTimeoutMs, ...served.map((l) => l.sendTimeoutMs));
    return { config, app, handle: app.callback(), top, shortestSendTimeoutMs };
  }

  let current = compose(initial, zones);
  if (initial.metricsLocations.length > 0) metrics.enableProcessMetrics();
  const server = createHttpServer((req, res) => current.handle(req, res), {
    clientHeaderTimeoutMs: initial.clientHeaderTimeoutMs,
    sendTimeoutMs: initial.sendTimeoutMs,
    shortestSendTimeoutMs: current.shortestSendTimeoutMs,
    bareLfHeads: options.bareLfHeads,
    ...requestObservers([metrics, logs], () => current.top.accessLog),
  });
  server.on('connection', (socket) => {
    metrics.connectionOpened();
    socket.once('close', () => metrics.connectionClosed());
  });
  let sweepTimer: NodeJS.Timeout | null = null;

  function sweepExpired(): Promise<number> {
    return state.sweep(current.config);
  }

  function startSweeps(config: GatewayConfig): void {
    if (sweepTimer) clearInterval(sweepTimer);
    const every = Math.max(1000, Math.min(60_000, ...config.locations.map((l) => Math.min(l.sessionTimeoutMs, l.completedRetentionMs) / 4)));
    sweepTimer = setInterval(() => sweepExpired().catch((err) => log.error({ err }, 'expiry sweep failed')), every);
    sweepTimer.unref();
  }

  async function close(): Promise<void> {
    if (sweepTimer) clearInterval(sweepTimer);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await zones.close();
    for (const zone of retiredZones) await zone.close();
    await state.close();
    logs.close();
  }

  return {
    get app() {
      return current.app;
    },
    server,
    get config() {
      return current.config;
    },
    log,
    metrics,
    sweepExpired,
    progress: (zone) => zones.get(zone),
    async listen() {
      try {
        await state.start(initial);
      } catch (err) {
        await state.close();
        throw err;
      }
      startSweeps(initial);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(initial.listen.port, initial.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      log.info({ address: `${address.address}:${address.port}`, config: initial.source }, 'upload gateway listening');
      return address;
    },
    close,
    async shutdown(graceMs = current.config.shutdownTimeoutMs) {
      log.info({ inFlight: drain.size, graceMs }, 'graceful stop: no new connections, the requests in flight finish');
      if (sweepTimer) clearInterval(sweepTimer);
      server.close();
      server.closeIdleConnections();
      const cut = await drain.stop(graceMs, interruptRequest);
      if (cut > 0) log.warn({ requests: cut }, 'graceful stop: requests still in flight after worker_shutdown_timeout were answered 503 (retryable)');
      log.info('graceful stop: done');
      await close();
    },
    async reload(source) {
      const was = current.config;
      let config: GatewayConfig;
      try {
        config = typeof source === 'function' ? source() : source;
        if (config.listen.host !== was.listen.host || config.listen.port !== was.listen.port) {
          throw new Error(`listen ${config.listen.host}:${config.listen.port} differs from ${was.listen.host}:${was.listen.port}: a reload keeps the listening socket; restart to move it`);
        }
        await state.start(config);
        logs.configure(config);
        const nextZones = new ProgressZones(config, state, zones);
        const next = compose(config, nextZones);
        retiredZones.push(...nextZones.dropped(zones));
        zones = nextZones;
        current = next;
        if (config.metricsLocations.length > 0) metrics.enableProcessMetrics();
        updateHttpServer(server, { clientHeaderTimeoutMs: config.clientHeaderTimeoutMs, sendTimeoutMs: config.sendTimeoutMs, shortestSendTimeoutMs: next.shortestSendTimeoutMs });
        if (sweepTimer) startSweeps(config);
      } catch (err) {
        metrics.reloaded(false);
        throw err;
      }
      metrics.reloaded(true);
      log.info({ config: config.source }, 'configuration reloaded');
    },
    reopenLogs: () => logs.reopen(),
  };
}
