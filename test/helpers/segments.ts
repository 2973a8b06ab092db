/**
 * A small resumable-upload client for tests that kill the gateway: raw sockets (so a request can
 * be stopped half-way through its body), a response is taken as soon as it is complete (a 201
 * read just before a kill still counts), and every connection failure is reported as a
 * `ConnectionLost` instead of hanging.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import { httpRequest, segmentRequest } from './gateway';

export interface ByteRange {
  start: number;
  end: number;
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The connection failed (refused, reset, closed) before a complete response arrived. */
export class ConnectionLost extends Error {}

export interface SendOptions {
  /**
   * Called once the request head and `pauseAfter` body bytes are written; the rest of the body
   * is written only after the returned promise resolves (a test kills the gateway meanwhile).
   */
  pauseAt?: { bodyBytes: number; hook: () => Promise<void> };
  /** Give up (ConnectionLost) after this long without a complete response. */
  timeoutMs?: number;
}

/** Parses a complete response (no 1xx expected), or null while more bytes are needed. */
function parseComplete(raw: Buffer, closed: boolean): SimpleResponse | null {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const lines = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const body = raw.subarray(headEnd + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return body.length >= length ? { status, headers, body: body.subarray(0, length) } : null;
  }
  return closed ? { status, headers, body } : null;
}

/** Sends one request (`head` + `body`) on a fresh connection; resolves with the first complete response. */
export function send(port: number, head: Buffer, body: Buffer, options: SendOptions = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (result: SimpleResponse | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => finish(new ConnectionLost('no complete response in time')), options.timeoutMs ?? 15_000);
    socket.on('connect', () => {
      const pause = options.pauseAt;
      if (!pause) {
        socket.write(Buffer.concat([head, body]));
        return;
      }
      socket.write(Buffer.concat([head, body.subarray(0, pause.bodyBytes)]), () => {
        pause.hook().then(() => {
          if (!done && !socket.destroyed) socket.write(body.subarray(pause.bodyBytes));
        }, (err) => finish(err as Error));
      });
    });
    socket.on('data', (c) => {
      chunks.push(c);
      const response = parseComplete(Buffer.concat(chunks), false);
      if (response) finish(response);
    });
    socket.on('error', (err) => finish(new ConnectionLost(err.message)));
    socket.on('close', () => {
      const response = parseComplete(Buffer.concat(chunks), true);
      finish(response ?? new ConnectionLost('connection closed without a complete response'));
    });
  });
}

/** One resumable segment `start…end` (inclusive) of `file`. */
export function sendSegment(port: number, sessionId: string, file: Buffer, range: ByteRange, options: SendOptions = {}): Promise<SimpleResponse> {
  const body = file.subarray(range.start, range.end + 1);
  const request = segmentRequest(sessionId, range.start, range.end, file.length, body);
  return send(port, request.subarray(0, request.length - body.length), body, options);
}

/** D22 status query. */
export function statusQuery(port: number, sessionId: string, timeoutMs = 5000): Promise<SimpleResponse> {
  return send(port, httpRequest('GET', '/upload', [['Session-ID', sessionId]]), Buffer.alloc(0), { timeoutMs });
}

/** `0-4/12,9-10/12` → ranges (normalised) and total. Throws on anything malformed. */
export function parseRanges(text: string): { ranges: ByteRange[]; total: number } {
  let total = -1;
  let ranges: ByteRange[] = [];
  for (const entry of text.split(',')) {
    const m = /^(\d+)-(\d+)\/(\d+)$/.exec(entry.trim());
    if (!m) throw new Error(`malformed range entry ${JSON.stringify(entry)} in ${JSON.stringify(text)}`);
    if (total >= 0 && Number(m[3]) !== total) throw new Error(`mixed totals in ${JSON.stringify(text)}`);
    total = Number(m[3]);
    ranges = addRange(ranges, { start: Number(m[1]), end: Number(m[2]) });
  }
  return { ranges, total };
}

/** Adds a range to a sorted, disjoint, non-adjacent set (merging touching ranges). */
export function addRange(set: readonly ByteRange[], r: ByteRange): ByteRange[] {
  const all = [...set, r].sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const x of all) {
    const last = out[out.length - 1];
    if (last && x.start <= last.end + 1) last.end = Math.max(last.end, x.end);
    else out.push({ start: x.start, end: x.end });
  }
  return out;
}

/** Every byte of `inner` is in `outer`. */
export function covers(outer: readonly ByteRange[], inner: readonly ByteRange[]): boolean {
  return inner.every((r) => outer.some((o) => o.start <= r.start && r.end <= o.end));
}

/** Number of bytes in a set. */
export function coveredBytes(set: readonly ByteRange[]): number {
  return set.reduce((n, r) => n + r.end - r.start + 1, 0);
}

export function formatRanges(set: readonly ByteRange[], total: number): string {
  return set.map((r) => `${r.start}-${r.end}/${total}`).join(',');
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` deterministic pseudo-random bytes (AES-128-CTR keystream of the seed: fast and reproducible). */
export function randomFile(size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`random-file-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `promise`'s value, or null after `ms` (the timer is cleared either way, so nothing lingers). */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** `length` bytes of `file` from `position` (fewer if the file is shorter; empty if it does not exist). */
export async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  let handle;
  try {
    handle = await fsp.open(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buf, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
