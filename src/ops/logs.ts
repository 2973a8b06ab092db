/**
 * The gateway's log files, the nginx way: `error_log` (the gateway's own log: a file or stderr,
 * and a level; without it, stdout at `LOG_LEVEL`) and `access_log` (one JSON line per request,
 * per location). `SIGUSR1` reopens every file (rotation: move the files away, send the signal);
 * a reload applies new paths and levels without losing a line.
 */
import pino, { type Logger } from 'pino';
import type { GatewayConfig } from '../config/types';
import type { RequestFacts, RequestSink } from './observe';

type Destination = ReturnType<typeof pino.destination>;

/** One access log line (nginx's variables, in JSON). */
function accessLine(facts: RequestFacts, instance: string): Record<string, unknown> {
  return {
    remote_addr: facts.remoteAddr,
    method: facts.method,
    uri: facts.uri,
    session_id: facts.sessionId,
    range: facts.range,
    status: facts.status,
    body_bytes_received: facts.bodyBytes,
    bytes_sent: facts.bytesSent,
    duration_ms: Math.round(facts.seconds * 1e6) / 1e3,
    location: facts.location,
    instance,
    ...(facts.reason ? { reason: facts.reason } : {}),
  };
}

/**
 * The standard streams by their descriptors, not opened again by path: a container's stdout is a
 * pipe of the runtime's that a non-root user may not open as `/dev/stdout`.
 */
const STREAMS: Readonly<Record<string, number>> = { stderr: 2, '/dev/stdout': 1, '/dev/stderr': 2 };

function open(file: string): Destination {
  const fd = STREAMS[file];
  return fd !== undefined ? pino.destination({ dest: fd, sync: true }) : pino.destination({ dest: file, sync: true, mkdir: true });
}

/** A file of its own (reopened on SIGUSR1, closed when no longer used), not a standard stream. */
function isFile(file: string | null): boolean {
  return file !== null && STREAMS[file] === undefined;
}

export class GatewayLogs implements RequestSink {
  /** The gateway's own log; its destination and level follow `error_log`. */
  readonly log: Logger;
  private errorFile: string | null = null;
  private errorDestination: Destination | null = null;
  private get errorIsFile(): boolean {
    return isFile(this.errorFile);
  }

  private readonly accessFiles = new Map<string, { destination: Destination; logger: Logger }>();

  /** `given`: a logger of the caller's (programmatic use, tests); `error_log` then changes nothing. */
  constructor(
    private readonly instance: string,
    private readonly given?: Logger,
  ) {
    this.log = given ?? pino({ level: process.env.LOG_LEVEL ?? 'info' }, { write: (line: string) => (this.errorDestination ??= open('/dev/stdout')).write(line) });
  }

  /** Opens what `config` names (throws when a file cannot be opened) and closes the access logs it no longer names. */
  configure(config: GatewayConfig): void {
    const wanted = new Set([config.accessLog, ...[...config.locations, ...config.progressLocations, ...config.metricsLocations].map((l) => l.accessLog)]);
    wanted.delete(null);
    for (const file of wanted) this.accessLog(file!);
    for (const [file, { destination }] of this.accessFiles) {
      if (!wanted.has(file)) {
        this.accessFiles.delete(file);
        if (isFile(file)) destination.end();
      }
    }
    if (this.given) return;
    const errorLog = config.errorLog;
    const file = errorLog?.file ?? null;
    if (file !== this.errorFile) {
      const next = open(file ?? '/dev/stdout');
      const previous = this.errorDestination;
      const previousIsFile = this.errorIsFile;
      this.errorDestination = next;
      this.errorFile = file;
      if (previous && previousIsFile) previous.end();
    }
    this.log.level = errorLog?.level ?? process.env.LOG_LEVEL ?? 'info';
  }

  private accessLog(file: string): Logger {
    let entry = this.accessFiles.get(file);
    if (!entry) {
      const destination = open(file);
      // `"log":"access"` in place of the level: lines stay apart from the gateway's own where both go to stdout.
      const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: () => ({ log: 'access' }) } }, destination);
      this.accessFiles.set(file, (entry = { destination, logger }));
    }
    return entry.logger;
  }

  /** A request is over: its line goes to the access log of its location (if any). */
  finished(facts: RequestFacts): void {
    if (facts.accessLog === null) return;
    try {
      this.accessLog(facts.accessLog).info(accessLine(facts, this.instance));
    } catch (err) {
      this.log.error({ file: facts.accessLog, err: (err as Error).message }, 'cannot write the access log');
    }
  }

  /** SIGUSR1: every log file is opened again at its path (after a rotation moved it away). */
  reopen(): void {
    for (const [file, { destination }] of this.accessFiles) if (isFile(file)) destination.reopen();
    if (this.errorIsFile) this.errorDestination?.reopen();
  }

  close(): void {
    for (const [file, { destination }] of this.accessFiles) if (isFile(file)) destination.end();
    this.accessFiles.clear();
    if (this.errorIsFile) this.errorDestination?.end();
  }
}
