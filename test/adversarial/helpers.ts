/**
 * The adversarial suite's tools (issue 9): a real gateway process with a byte-exact capture
 * backend, raw socket connections that can stall, stop reading or send anything, and the checks
 * every attack ends with — acknowledged bytes byte-identical, no stray files, no leaked
 * descriptors (`/proc/PID/fd`), no error logged, the gateway still serving.
 *
 * A new attack class (disk full, fencing, …) starts an `AttackedGateway`, uploads a few segments
 * with `acknowledge`, takes a `snapshot`, attacks, and calls `expectUnharmed`.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DEFAULT_LOCATION, listFiles, parseAll, parseFields, rawRequest, type Answer } from '../helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from '../helpers/process';
import { formatRanges, randomFile, sendSegment, sleep, statusQuery, type ByteRange } from '../helpers/segments';

// ---------------------------------------------------------------------------------------------
// A backend that records the exact bytes it receives.

/** One request as the backend received it, byte for byte. */
export interface RawBackendRequest {
  raw: Buffer;
  head: Buffer;
  body: Buffer;
  /** Header lines of the head (name, value) as bytes in latin1 strings, in order. */
  headers: Array<[string, string]>;
  /** The generated form's fields (name → value, latin1). */
  fields: Array<[string, string]>;
}

/**
 * An upload_pass backend on a plain TCP server: it reads each request (Content-Length framed, as
 * the gateway sends them) and keeps its raw bytes, so a test compares bytes, not what an HTTP
 * library decoded. It answers `answer` (default: 200 with the body `backend ok\n`) and closes.
 */
export class RawCaptureBackend {
  readonly requests: RawBackendRequest[] = [];
  port = 0;
  private server!: net.Server;

  constructor(private readonly answer: () => Buffer | string = () => 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbackend ok\n') {}

  async start(): Promise<this> {
    this.server = net.createServer((socket) => {
      let raw = Buffer.alloc(0);
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        raw = Buffer.concat([raw, chunk]);
        const headEnd = raw.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = raw.subarray(0, headEnd);
        const headers = head.toString('latin1').split('\r\n').slice(1).map((line): [string, string] => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+/, '')];
        });
        const length = Number(headers.find(([name]) => name.toLowerCase() === 'content-length')?.[1] ?? 0);
        if (raw.length < headEnd + 4 + length) return;
        const body = raw.subarray(headEnd + 4, headEnd + 4 + length);
        const contentType = headers.find(([name]) => name.toLowerCase() === 'content-type')?.[1] ?? '';
        this.requests.push({ raw, head, body, headers, fields: parseFields(contentType, body) });
        socket.end(this.answer());
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// The gateway process under attack.

export interface AttackedGateway {
  process: GatewayProcess;
  pid: number;
  port: number;
  store: string;
  state: string;
  backend: RawCaptureBackend;
  /** Path of a session's data file (`upload_store <store> 1`). */
  dataPath(sessionId: string): string;
  stop(): Promise<void>;
}

/**
 * Starts the real gateway binary (built `dist/`) with the default test location at `/upload`,
 * `topLevel` directives, and a RawCaptureBackend. `__BACKEND__` in `topLevel` is the backend's
 * address (for more locations). `store`/`state`: directories to use (e.g. a small tmpfs) instead
 * of fresh ones.
 */
export async function startAttackedGateway(options: { topLevel?: string; store?: string; state?: string } = {}): Promise<AttackedGateway> {
  const dir = tempDir('adversarial-');
  const store = options.store ?? path.join(dir, 'store');
  const state = options.state ?? path.join(dir, 'state');
  const backend = await new RawCaptureBackend().start();
  const port = await freePort();
  const substitute = (text: string) =>
    text.replace(/__STORE__/g, store).replace(/__STATE__/g, state).replace(/__BACKEND__/g, `127.0.0.1:${backend.port}`);
  const config = [
    `listen 127.0.0.1:${port};`,
    'client_max_body_size 100m;',
    substitute(options.topLevel ?? ''),
    'location /upload {',
    substitute(DEFAULT_LOCATION),
    '}',
    '',
  ].join('\n');
  const process = await startGateway(config, { port, dir });
  return {
    process,
    pid: process.child.pid!,
    port,
    store,
    state,
    backend,
    dataPath: (id) => path.join(store, id.slice(-1), id),
    async stop() {
      await process.stop();
      await backend.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Raw connections.

/** Everything a connection received, its answers, and whether the server closed it. */
export interface Exchange {
  raw: Buffer;
  answers: Answer[];
  closed: boolean;
}

/**
 * One TCP connection to the gateway, driven byte by byte: write anything, stall, stop reading
 * (`pauseReading`), and wait for the server to close it.
 */
export class RawConnection {
  private readonly chunks: Buffer[] = [];
  private closedAt: number | null = null;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => this.chunks.push(chunk));
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closedAt = Date.now();
        resolve();
      }),
    );
  }

  /** `allowHalfOpen`: the connection stays open for writing after the server ended its side (a client that never closes). */
  static open(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
    });
  }

  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve) => this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, () => resolve()));
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  get closed(): boolean {
    return this.closedAt !== null;
  }

  /** What arrived so far. */
  received(): Exchange {
    const raw = Buffer.concat(this.chunks);
    return { raw, answers: parseAll(raw), closed: this.closed };
  }

  /** Waits until the server closes the connection (or `ms` passed), then reports. */
  async waitClosed(ms: number): Promise<Exchange> {
    await Promise.race([this.closedPromise, sleep(ms)]);
    return this.received();
  }

  /** Waits until `count` answers are complete (or `ms` passed). */
  async waitAnswers(count: number, ms: number): Promise<Exchange> {
    const deadline = Date.now() + ms;
    while (this.received().answers.filter((a) => a.status >= 200).length < count && !this.closed && Date.now() < deadline) await sleep(20);
    return this.received();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends `data` on a fresh connection and reads until the server closes it or `idleMs` of silence. */
export async function exchange(port: number, data: Buffer | string, idleMs = 1500): Promise<Exchange> {
  const res = await rawRequest(port, typeof data === 'string' ? Buffer.from(data, 'latin1') : data, { idleMs });
  return { raw: res.raw, answers: parseAll(res.raw), closed: res.closed };
}

// ---------------------------------------------------------------------------------------------
// State checks.

/**
 * Descriptors that could be leaked: all but the session files the gateway keeps open on purpose
 * across segments (data files in the store, journals in the state directory: the bounded pool),
 * as long as those files still exist and each is open once. A second descriptor of one file, or
 * a descriptor of a deleted one, counts.
 */
export function leakableDescriptors(gw: Pick<AttackedGateway, 'pid' | 'store' | 'state'>): number {
  const seen = new Set<string>();
  let count = 0;
  for (const fd of readdirSync(`/proc/${gw.pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${gw.pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const pooled = (target.startsWith(`${gw.store}/`) || target.startsWith(`${gw.state}/`)) && !target.endsWith(' (deleted)') && !seen.has(target);
    if (pooled) seen.add(target);
    else count++;
  }
  return count;
}

export interface Snapshot {
  descriptors: number;
  store: string[];
  state: string[];
}

/** The gateway's descriptors and files, to compare with after an attack (take it when idle). */
export async function snapshot(gw: AttackedGateway): Promise<Snapshot> {
  await settleDescriptors(gw, Infinity);
  return { descriptors: leakableDescriptors(gw), store: listFiles(gw.store), state: listFiles(gw.state) };
}

/** Waits (up to `ms`) until the process has at most `limit` leakable descriptors and the count is stable; returns it. */
export async function settleDescriptors(gw: AttackedGateway, limit: number, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  let last = leakableDescriptors(gw);
  for (;;) {
    await sleep(100);
    const now = leakableDescriptors(gw);
    if ((now <= limit && now === last) || Date.now() > deadline) return now;
    last = now;
  }
}

/** After an attack: no descriptor leaked, no file added or removed in the store and the state. */
export async function expectNothingLeaked(gw: AttackedGateway, before: Snapshot): Promise<void> {
  expect(await settleDescriptors(gw, before.descriptors)).toBeLessThanOrEqual(before.descriptors);
  expect(listFiles(gw.store)).toEqual(before.store);
  expect(listFiles(gw.state)).toEqual(before.state);
}

/** An upload whose first segments the gateway acknowledged (201). */
export interface Acknowledged {
  id: string;
  file: Buffer;
  ranges: ByteRange[];
}

let uploads = 0;

/** Uploads `segments` of a fresh random file and expects each to be acknowledged (201). */
export async function acknowledge(gw: AttackedGateway, size = 96 * 1024, segments: ByteRange[] = [{ start: 0, end: 32 * 1024 - 1 }, { start: 64 * 1024, end: 96 * 1024 - 1 }]): Promise<Acknowledged> {
  uploads += 1;
  const id = `ack${process.pid}n${uploads}`;
  const file = randomFile(size, uploads);
  const ranges: ByteRange[] = [];
  for (const range of segments) {
    const res = await sendSegment(gw.port, id, file, range);
    expect(res.status).toBe(201);
    ranges.push(range);
  }
  return { id, file, ranges };
}

/** The acknowledged ranges are still reported, and their bytes on disk are byte-identical. */
export async function expectAcknowledgedIntact(gw: AttackedGateway, upload: Acknowledged): Promise<void> {
  const status = await statusQuery(gw.port, upload.id);
  expect(status.status).toBe(200);
  expect(status.headers.range).toBe(formatRanges(upload.ranges, upload.file.length));
  const onDisk = readFileSync(gw.dataPath(upload.id));
  for (const { start, end } of upload.ranges) expect(onDisk.subarray(start, end + 1).equals(upload.file.subarray(start, end + 1))).toBe(true);
}

/** A fresh two-segment upload completes: 201, then the backend's answer, and the backend got the whole file. */
export async function expectStillServing(gw: AttackedGateway): Promise<void> {
  uploads += 1;
  const id = `alive${process.pid}n${uploads}`;
  const file = randomFile(48 * 1024, 1000 + uploads);
  const calls = gw.backend.requests.length;
  expect((await sendSegment(gw.port, id, file, { start: 0, end: 24 * 1024 - 1 })).status).toBe(201);
  const last = await sendSegment(gw.port, id, file, { start: 24 * 1024, end: file.length - 1 });
  expect(last.status).toBe(200);
  expect(gw.backend.requests.length).toBe(calls + 1);
  const fields = gw.backend.requests[calls].fields;
  expect(fields.find(([name]) => name === 'size')?.[1]).toBe(String(file.length));
  expect(fields.find(([name]) => name === 'sha256')?.[1]).toBe(createHash('sha256').update(file).digest('hex'));
  expect(readFileSync(gw.dataPath(id)).equals(file)).toBe(true);
}

/** Nothing at error level in the gateway's log (an exception would be logged there). */
export function expectNoErrorLogged(gw: AttackedGateway): void {
  const errors = gw.process.output().split('\n').filter((line) => /"level":(50|60)\b/.test(line));
  expect(errors).toEqual([]);
}

/** A segment request for a session nobody else uses: if it ever ran, the store and the state would show it. */
export function smuggledSegment(tag: string): string {
  const id = `smuggled${process.pid}${tag.replace(/[^A-Za-z0-9]/g, '')}`;
  return [
    'POST /upload HTTP/1.1',
    'Host: victim',
    'Content-Type: application/octet-stream',
    'Content-Disposition: attachment; filename="smuggled.bin"',
    'X-Content-Range: bytes 0-4/10',
    `Session-ID: ${id}`,
    'Content-Length: 5',
    '',
    'EVIL!',
  ].join('\r\n');
}

/** The head of a raw segment request (no Content-Length / Transfer-Encoding, no blank line), CRLF line ends. */
export function segmentHead(sessionId: string, range: string, extra: string[] = []): string {
  return [
    'POST /upload HTTP/1.1',
    'Host: test',
    'Content-Type: application/octet-stream',
    'Content-Disposition: attachment; filename="a.bin"',
    `X-Content-Range: ${range}`,
    `Session-ID: ${sessionId}`,
    ...extra,
  ].join('\r\n');
}
