/**
 * Bare-LF request heads, accepted as nginx accepts them, in front of Node's strict HTTP parser.
 *
 * Why: legacy clients end request-head lines with a bare LF, and nginx (so the module) accepts
 * that (RFC 9112 §2.2 allows it for the start-line and fields). Node's parser accepts it only in
 * its lenient mode, and in Node 20 (llhttp 9) the lenient flags cannot be had one by one for it:
 * a bare LF after the request-line needs `kLenientOptionalLFAfterCR` too, which also takes a bare
 * CR as a line end (`…\r\n\rGET /x` ran a second request), and the public option
 * (`insecureHTTPParser`) turns on every leniency: `Content-Length` with `Transfer-Encoding`,
 * `5 ` chunk sizes, chunk data without CRLF — request smuggling (RFC 9112 §6.1, §6.3, §7.1).
 *
 * So the parser runs strict, and this normalizer, fed every byte of a connection first, only
 * inserts a CR before each bare LF of a request head. To know where heads are it follows the
 * message framing, strictly (RFC 9112 §6.3: `Content-Length` digits, or `Transfer-Encoding:
 * chunked` with CRLF chunk lines). It never changes a byte of a body, and it never judges: on
 * anything it does not fully understand (a head line it cannot read, both or repeated framing
 * headers, a chunk line not ended by CRLF, CONNECT, an upgrade, a connection that closes after the
 * message) it stops for the rest of the connection and passes the bytes on unchanged, and the
 * strict parser decides (a bare-LF head after that point is refused, never misread).
 */

const LF = 0x0a;
const CR = 0x0d;
const SEMICOLON = 0x3b;

/** A longer head is refused by the parser anyway (431); the normalizer stops before holding more. */
const MAX_HEAD_BYTES = 64 * 1024;
/** 13 hex digits stay below 2^53; a larger chunk is left to the parser. */
const MAX_CHUNK_SIZE_DIGITS = 13;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) +[^ ]+ +HTTP/1\\.([01])$`);
const FIELD_LINE = new RegExp(`^(${TOKEN}):([\\t\\x20-\\x7e\\x80-\\xff]*)$`);

type State =
  | 'head'
  | 'body'
  | 'chunkSize'
  | 'chunkExtension'
  | 'chunkSizeLf'
  | 'chunkData'
  | 'chunkDataCr'
  | 'chunkDataLf'
  | 'trailerLineStart'
  | 'trailerLine'
  | 'trailerLineLf'
  | 'trailerEndLf'
  | 'passthrough';

/** States that wait for one exact byte, and where it leads. */
const EXPECTED_BYTE: Partial<Record<State, [number, State | 'nextMessage']>> = {
  chunkDataCr: [CR, 'chunkDataLf'],
  chunkDataLf: [LF, 'chunkSize'],
  trailerLineLf: [LF, 'trailerLineStart'],
  trailerEndLf: [LF, 'nextMessage'],
};

function trimOws(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The framing-relevant facts of one request head. */
interface Head {
  requestLineSeen: boolean;
  method: string;
  minorVersion: string;
  contentLengths: string[];
  transferEncodings: string[];
  connectionTokens: string[];
  upgrade: boolean;
  bytes: number;
}

function newHead(): Head {
  return { requestLineSeen: false, method: '', minorVersion: '', contentLengths: [], transferEncodings: [], connectionTokens: [], upgrade: false, bytes: 0 };
}

/** One connection's bytes in, the same bytes out with a CR before every bare LF of a request head. */
export class BareLfHeadNormalizer {
  private state: State = 'head';
  private head: Head = newHead();
  /** The head line read so far (latin1), a trailing CR included. */
  private line = '';
  /** Body or chunk-data bytes still to pass. */
  private remaining = 0;
  private chunkSize = 0;
  private chunkSizeDigits = 0;
  private lastLineEnding: 'crlf' | 'lf' = 'crlf';

  /** How the connection's first request-line ended: `crlf`, `lf` (bare), or null while not seen yet. */
  firstLineEnding: 'crlf' | 'lf' | null = null;

  /** True once the normalizer gave up on this connection (the rest passes unchanged). */
  get passingThrough(): boolean {
    return this.state === 'passthrough';
  }

  /** Returns `chunk` itself when nothing was inserted. */
  push(chunk: Buffer): Buffer {
    const inserts: number[] = [];
    let i = 0;
    while (i < chunk.length && this.state !== 'passthrough') {
      switch (this.state) {
        case 'head':
          i = this.readHead(chunk, i, inserts);
          break;
        case 'body':
        case 'chunkData': {
          const n = Math.min(this.remaining, chunk.length - i);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) {
            if (this.state === 'body') this.startMessage();
            else this.state = 'chunkDataCr';
          }
          break;
        }
        default:
          this.readChunkFraming(chunk[i]);
          i++;
      }
    }
    return inserts.length === 0 ? chunk : withCarriageReturns(chunk, inserts);
  }

  private startMessage(): void {
    this.state = 'head';
    this.head = newHead();
    this.line = '';
  }

  private giveUp(): void {
    this.state = 'passthrough';
    this.line = '';
  }

  /** Reads head bytes from `from`; returns where the head (or the chunk) ends. */
  private readHead(chunk: Buffer, from: number, inserts: number[]): number {
    let i = from;
    while (i < chunk.length) {
      const lf = chunk.indexOf(LF, i);
      const end = lf < 0 ? chunk.length : lf;
      this.head.bytes += end - i + (lf < 0 ? 0 : 1);
      if (this.head.bytes > MAX_HEAD_BYTES) {
        this.giveUp();
        return chunk.length;
      }
      if (end > i) this.line += chunk.toString('latin1', i, end);
      if (lf < 0) return chunk.length;
      const endsWithCr = this.line.endsWith('\r');
      this.lastLineEnding = endsWithCr ? 'crlf' : 'lf';
      if (!endsWithCr) inserts.push(lf);
      const text = endsWithCr ? this.line.slice(0, -1) : this.line;
      this.line = '';
      i = lf + 1;
      this.readHeadLine(text);
      if (this.state !== 'head') return i;
    }
    return i;
  }

  private readHeadLine(text: string): void {
    const head = this.head;
    if (!head.requestLineSeen) {
      // RFC 9112 §2.2: empty lines before the request-line are ignored.
      if (text === '') return;
      this.firstLineEnding ??= this.lastLineEnding;
      const m = REQUEST_LINE.exec(text);
      if (!m) return this.giveUp();
      head.requestLineSeen = true;
      head.method = m[1];
      head.minorVersion = m[2];
      return;
    }
    if (text === '') return this.endHead();
    const m = FIELD_LINE.exec(text);
    if (!m) return this.giveUp();
    const value = trimOws(m[2]);
    switch (m[1].toLowerCase()) {
      case 'content-length':
        head.contentLengths.push(value);
        break;
      case 'transfer-encoding':
        head.transferEncodings.push(value);
        break;
      case 'connection':
        head.connectionTokens.push(...value.split(',').map((t) => trimOws(t).toLowerCase()));
        break;
      case 'upgrade':
        head.upgrade = true;
        break;
    }
  }

  /** The empty line: what follows is decided by the framing (RFC 9112 §6.3). */
  private endHead(): void {
    const head = this.head;
    const keepAlive = head.minorVersion === '1' ? !head.connectionTokens.includes('close') : head.connectionTokens.includes('keep-alive');
    // No further request will be read on this connection (or not as HTTP): nothing left to do.
    if (head.method === 'CONNECT' || head.upgrade || !keepAlive) return this.giveUp();
    const te = head.transferEncodings;
    const cl = head.contentLengths;
    if (te.length > 0) {
      if (te.length !== 1 || cl.length !== 0 || te[0].toLowerCase() !== 'chunked' || head.minorVersion !== '1') return this.giveUp();
      this.state = 'chunkSize';
      this.chunkSize = 0;
      this.chunkSizeDigits = 0;
      return;
    }
    if (cl.length === 0) return this.startMessage();
    if (cl.length !== 1 || !/^[0-9]{1,15}$/.test(cl[0])) return this.giveUp();
    this.remaining = Number(cl[0]);
    if (this.remaining === 0) this.startMessage();
    else this.state = 'body';
  }

  /** One byte of chunked framing (RFC 9112 §7.1), CRLF line ends only. */
  private readChunkFraming(c: number): void {
    const expected = EXPECTED_BYTE[this.state];
    if (expected) {
      if (c !== expected[0]) return this.giveUp();
      if (expected[1] === 'nextMessage') return this.startMessage();
      this.state = expected[1];
      this.chunkSize = 0;
      this.chunkSizeDigits = 0;
      return;
    }
    switch (this.state) {
      case 'chunkSize':
        if (isHexDigit(c)) {
          if (++this.chunkSizeDigits > MAX_CHUNK_SIZE_DIGITS) return this.giveUp();
          this.chunkSize = this.chunkSize * 16 + parseInt(String.fromCharCode(c), 16);
        } else if (this.chunkSizeDigits > 0 && c === CR) this.state = 'chunkSizeLf';
        else if (this.chunkSizeDigits > 0 && c === SEMICOLON) this.state = 'chunkExtension';
        else this.giveUp();
        return;
      case 'chunkExtension':
        if (c === CR) this.state = 'chunkSizeLf';
        else if (c === LF) this.giveUp();
        return;
      case 'chunkSizeLf':
        if (c !== LF) return this.giveUp();
        if (this.chunkSize === 0) {
          this.state = 'trailerLineStart';
        } else {
          this.remaining = this.chunkSize;
          this.state = 'chunkData';
        }
        return;
      case 'trailerLineStart':
        if (c === CR) this.state = 'trailerEndLf';
        else if (c === LF) this.giveUp();
        else this.state = 'trailerLine';
        return;
      case 'trailerLine':
        if (c === CR) this.state = 'trailerLineLf';
        else if (c === LF) this.giveUp();
        return;
    }
  }
}

/** `chunk` with a CR inserted before each of the given (ascending) LF positions. */
function withCarriageReturns(chunk: Buffer, positions: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(chunk.length + positions.length);
  let from = 0;
  let to = 0;
  for (const lf of positions) {
    to += chunk.copy(out, to, from, lf);
    out[to++] = CR;
    from = lf;
  }
  chunk.copy(out, to, from);
  return out;
}
