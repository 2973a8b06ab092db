/**
 * The gateway's Prometheus metrics (prom-client), served by `upload_metrics` locations. Where
 * tusd has a metric, ours has its meaning under the prefix `upload_gateway_` (counters end in
 * `_total`, as Prometheus's naming rules and `promtool check metrics` want: tusd's
 * `tusd_bytes_received` is `upload_gateway_bytes_received_total`). Fed by the requests' observations
 * (`RequestSink`), the session engines (`StateObserver`), `auth_request` (`AuthObserver`) and the
 * server (connections, reloads).
 */
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StateObserver } from '../state/observer';
import type { AuthObserver } from '../http/auth-request';
import type { RequestFacts, RequestSink } from './observe';

const P = 'upload_gateway_';
/** prom-client's gauges named against Prometheus's rules (`promtool check metrics` refuses a gauge ending in `_total`). */
const NONCONFORMING = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
/** Methods counted by name; any other is `other` (a client cannot make series up). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const DISK_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Why a `503` was answered, from its reason: the label of `upload_gateway_refusals_total`. */
export function refusalReason(reason: string | null): string {
  const text = reason ?? '';
  if (/overlaps a segment .* in flight/.test(text)) return 'overlap';
  if (/being handed to the backend|single-shot upload of this session is in flight/.test(text)) return 'handoff';
  if (/backend is unreachable/.test(text)) return 'backend';
  if (/Redis is unavailable|lease|reservation/i.test(text)) return 'state';
  if (/gateway is stopping|gateway stopped/.test(text)) return 'stopping';
  if (/zone .* is full/.test(text)) return 'progress_zone';
  return 'other';
}

export class GatewayMetrics implements RequestSink, StateObserver, AuthObserver {
  readonly registry = new Registry();
  private processMetrics = false;
  private sessionsBase = 0;
  private sessionsDelta = 0;

  private readonly requests = this.counter('requests_total', 'Requests answered, by location (as nginx writes it; empty: none), method and status (499: closed before an answer).', ['location', 'method', 'status']);
  private readonly bytesReceived = this.counter('bytes_received_total', 'Request body bytes the upload handlers received (tusd_bytes_received).');
  private readonly segmentsAcknowledged = this.counter('segments_acknowledged_total', 'Segments whose bytes became part of their session (answered 201, or completing the upload).');
  private readonly uploadsCreated = this.counter('uploads_created_total', 'Uploads started: new resumable sessions and one-request uploads (tusd_uploads_created).');
  private readonly uploadsFinished = this.counter('uploads_finished_total', 'Uploads whose bytes were complete and whose hand-off the backend answered (tusd_uploads_finished).');
  private readonly uploadsFailed = this.counter('uploads_failed_total', 'Hand-offs that failed (backend unreachable, answer broken off, output limit) and one-request uploads refused after they began.');
  private readonly uploadsExpired = this.counter('uploads_expired_total', 'Incomplete sessions removed with their data after upload_session_timeout.');
  private readonly refusals = this.counter('refusals_total', 'Retryable 503 answers, by reason (overlap, handoff, backend, state, stopping, progress_zone, other).', ['reason']);
  private readonly authDecisions = this.counter('auth_requests_total', 'auth_request decisions, by source (subrequest, cache) and status (0: the sub-request failed).', ['source', 'status']);
  private readonly redisErrors = this.counter('redis_errors_total', 'Failed Redis calls of the session state, by operation (connection: the connection failed).', ['operation']);
  private readonly reloads = this.counter('config_reloads_total', 'Configuration reloads (SIGHUP), by result (applied, refused).', ['result']);
  private readonly handoffs = this.histogram('handoff_duration_seconds', 'Hand-offs to the backend, by the backend\'s status (failed: no answer), and how long they took.', ['status'], REQUEST_BUCKETS);
  private readonly segments = this.histogram('segment_duration_seconds', 'Segments (requests with a Session-ID that began an upload), from the request to its answer, by status.', ['status'], REQUEST_BUCKETS);
  private readonly journalAppends = this.histogram('journal_append_duration_seconds', 'Appends to session journals (file state).', [], DISK_BUCKETS);
  private readonly fsyncs = this.histogram('fsync_duration_seconds', 'fdatasync of session journals and data files (a wait for a shared flush included).', ['file'], DISK_BUCKETS);
  private readonly redisRoundTrips = this.histogram('redis_duration_seconds', 'Redis round trips of the session state, by operation.', ['operation'], DISK_BUCKETS);
  private readonly inFlight = new Gauge({ name: `${P}segments_in_flight`, help: 'Segments being received or answered now.', registers: [this.registry] });
  private readonly connections = new Gauge({ name: `${P}connections_open`, help: 'Open client connections (tusd_connections_open).', registers: [this.registry] });
  private readonly lastReload = new Gauge({ name: `${P}config_last_reload_successful`, help: 'Whether the last configuration reload was applied (1) or refused (0).', registers: [this.registry] });

  constructor() {
    const metrics = this;
    new Gauge({
      name: `${P}sessions_open`,
      help: 'Incomplete sessions, as the last expiry sweep counted them (with Redis: every instance\'s), plus this instance\'s changes since.',
      registers: [this.registry],
      collect() {
        this.set(Math.max(0, metrics.sessionsBase + metrics.sessionsDelta));
      },
    });
    this.lastReload.set(1);
  }

  private counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    return new Counter({ name: `${P}${name}`, help, labelNames, registers: [this.registry] });
  }

  private histogram(name: string, help: string, labelNames: string[], buckets: number[]): Histogram<string> {
    return new Histogram({ name: `${P}${name}`, help, labelNames, buckets, registers: [this.registry] });
  }

  /** Node.js process metrics (prom-client's defaults), started once a metrics location exists. */
  enableProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
    for (const name of NONCONFORMING) this.registry.removeSingleMetric(name);
  }

  /** The exposition (Prometheus text format). */
  endpoint(): Middleware {
    return async (ctx) => {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        ctx.set('Allow', 'GET, HEAD');
        ctx.status = 405;
        return;
      }
      ctx.body = await this.registry.metrics();
      ctx.type = this.registry.contentType;
      ctx.set('Cache-Control', 'no-store');
    };
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  reloaded(applied: boolean): void {
    this.reloads.inc({ result: applied ? 'applied' : 'refused' });
    this.lastReload.set(applied ? 1 : 0);
  }

  // RequestSink
  began(upload: { session: boolean; created: boolean }): void {
    if (upload.created) this.uploadsCreated.inc();
    if (upload.session) this.inFlight.inc();
  }

  bytes(count: number): void {
    this.bytesReceived.inc(count);
  }

  committed(): void {
    this.segmentsAcknowledged.inc();
  }

  handedOff(status: number | null, seconds: number): void {
    this.handoffs.observe({ status: status === null ? 'failed' : String(status) }, seconds);
    if (status === null) this.uploadsFailed.inc();
    else this.uploadsFinished.inc();
  }

  finished(facts: RequestFacts): void {
    const status = String(facts.status);
    this.requests.inc({ location: facts.location, method: METHODS.has(facts.method) ? facts.method : 'other', status });
    if (facts.upload?.session) {
      this.inFlight.dec();
      this.segments.observe({ status }, facts.seconds);
    }
    if (facts.upload && !facts.upload.session && !facts.handedOff && facts.status >= 400) this.uploadsFailed.inc();
    if (facts.status === 503) this.refusals.inc({ reason: refusalReason(facts.reason) });
  }

  // StateObserver
  journalAppended(seconds: number): void {
    this.journalAppends.observe(seconds);
  }

  synced(file: 'journal' | 'data', seconds: number): void {
    this.fsyncs.observe({ file }, seconds);
  }

  redisRoundTrip(operation: string, seconds: number): void {
    this.redisRoundTrips.observe({ operation }, seconds);
  }

  redisFailed(operation: string): void {
    this.redisErrors.inc({ operation });
  }

  sessionOpened(): void {
    this.sessionsDelta++;
  }

  sessionClosed(reason: 'completed' | 'expired' | 'discarded'): void {
    this.sessionsDelta--;
    if (reason === 'expired') this.uploadsExpired.inc();
  }

  sessionsCounted(open: number): void {
    this.sessionsBase = open;
    this.sessionsDelta = 0;
  }

  // AuthObserver
  decided(source: 'subrequest' | 'cache', status: number): void {
    this.authDecisions.inc({ source, status: String(status) });
  }
}
