/**
 * Streaming multipart/form-data body parser: nginx_upload_module's byte-level state machine
 * (spec §4.2), fed chunk by chunk, with constant memory whatever the part sizes.
 *
 * Why not busboy (or @fastify/busboy): both search for the delimiter `"\r\n--" B` only and need
 * CRLF part-header lines, so the module's bare-LF tolerance (`\n--B`, LF-only header lines, a
 * corpus case) cannot be had; their header limit is a per-part total rather than the module's
 * per-line `upload_max_part_header_len − 1`; and they differ from the module in what follows a
 * delimiter (`--Bjunk\r\n` starts a part, `--B-` ends the body), in the naive preamble search and
 * in which bytes of a broken delimiter look-alike stay data. Those are all visible in the bytes a
 * backend receives, so the module's machine is reproduced here instead.
 *
 * States (B = boundary bytes):
 *
 * | state          | behaviour |
 * |----------------|-----------|
 * | preamble       | look for `"--" B`; naive matcher: on a mismatch it restarts *without* re-testing the byte (so `---B` hides the boundary). Everything before it is ignored. |
 * | after delimiter| LF → part headers; `-` → end of the body (everything after is ignored); any other byte (CR included) is ignored. |
 * | headers        | CR bytes are dropped; LF ends a line; an empty line ends the headers. A line longer than `maxHeaderLineLength` bytes (CRs not counted) is an error. |
 * | data           | look for `"\r\n--" B`, or `"\n--" B` (bare-LF tolerance). A broken partial match is data; the failing byte is examined again. A CR directly before `"\r\n--" B` stays data. |
 * | epilogue       | everything ignored. |
 *
 * Events are returned per `write()`, in body order. Data events are views into the chunk that was
 * written (or small fresh buffers for a delimiter look-alike that spanned two chunks): copy them
 * if they must outlive the chunk.
 */

export type MultipartEvent =
  /** A delimiter followed by LF: header lines follow. */
  | { type: 'partBegin' }
  /** One part header line, CRs removed, as a byte string (latin1). */
  | { type: 'header'; line: string }
  /** The empty line after the headers: the part's data follows. */
  | { type: 'headersEnd' }
  /** Part data (never empty). */
  | { type: 'data'; data: Buffer }
  /** A delimiter after the part's data: the part is complete. */
  | { type: 'partEnd' }
  /** The closing delimiter (`--B-`): everything after it is ignored. */
  | { type: 'end' };

export type ParserState = 'preamble' | 'afterDelimiter' | 'headers' | 'data' | 'epilogue';

/** A malformed body the parser itself detects (only an over-long part header line). */
export class MultipartSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartSyntaxError';
  }
}

export interface MultipartParserOptions {
  /**
   * Longest part header line accepted, CRs not counted. The module's `upload_max_part_header_len`
   * N allows N − 1 bytes.
   */
  maxHeaderLineLength: number;
}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

export class MultipartParser {
  private readonly preamblePattern: Buffer;
  /** `"\n--" B`: the delimiter without its optional leading CR. */
  private readonly delimiter: Buffer;
  private readonly maxLine: number;

  private stateValue: ParserState = 'preamble';
  /** Preamble: bytes of `"--" B` matched. */
  private preambleMatched = 0;
  /** Headers: the current line's bytes (CRs dropped). */
  private line: Buffer;
  private lineLength = 0;
  /** Data: bytes of `delimiter` matched (0 = none), and whether a CR preceded the LF. */
  private matched = 0;
  private matchedCr = false;
  /** Data: a CR at the end of the previous chunk that may start a delimiter. */
  private pendingCr = false;
  private sawEnd = false;

  constructor(boundary: string | Buffer, options: MultipartParserOptions) {
    const b = typeof boundary === 'string' ? Buffer.from(boundary, 'latin1') : Buffer.from(boundary);
    if (b.length === 0) throw new RangeError('MultipartParser: empty boundary');
    if (!Number.isInteger(options.maxHeaderLineLength) || options.maxHeaderLineLength < 0) {
      throw new RangeError(`MultipartParser: invalid maxHeaderLineLength ${String(options.maxHeaderLineLength)}`);
    }
    this.preamblePattern = Buffer.concat([Buffer.from('--'), b]);
    this.delimiter = Buffer.concat([Buffer.from('\n--'), b]);
    this.maxLine = options.maxHeaderLineLength;
    this.line = Buffer.alloc(Math.min(this.maxLine, 1024));
  }

  get state(): ParserState {
    return this.stateValue;
  }

  /** The closing delimiter was seen. */
  get ended(): boolean {
    return this.sawEnd;
  }

  /**
   * Whether the body, if it ended now, would be complete: the closing delimiter was seen, or the
   * last thing seen was a delimiter (`…\r\n--B` at the end, as the module accepts). A body that
   * never showed a delimiter, or ends inside part headers or data, is truncated (D16).
   */
  get complete(): boolean {
    return this.sawEnd || this.stateValue === 'afterDelimiter';
  }

  /** Feed the next chunk of the body; returns what it completed. Throws MultipartSyntaxError. */
  write(chunk: Buffer): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.stateValue) {
        case 'preamble':
          i = this.preamble(chunk, i);
          break;
        case 'afterDelimiter':
          i = this.afterDelimiter(chunk, i, events);
          break;
        case 'headers':
          i = this.headers(chunk, i, events);
          break;
        case 'data':
          i = this.data(chunk, i, events);
          break;
        case 'epilogue':
          return events;
      }
    }
    return events;
  }

  private preamble(chunk: Buffer, from: number): number {
    const pattern = this.preamblePattern;
    for (let i = from; i < chunk.length; i++) {
      if (chunk[i] === pattern[this.preambleMatched]) {
        if (++this.preambleMatched === pattern.length) {
          this.stateValue = 'afterDelimiter';
          return i + 1;
        }
      } else {
        this.preambleMatched = 0; // the module does not look at this byte again
      }
    }
    return chunk.length;
  }

  private afterDelimiter(chunk: Buffer, from: number, events: MultipartEvent[]): number {
    for (let i = from; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === LF) {
        this.stateValue = 'headers';
        this.lineLength = 0;
        events.push({ type: 'partBegin' });
        return i + 1;
      }
      if (c === DASH) {
        this.stateValue = 'epilogue';
        this.sawEnd = true;
        events.push({ type: 'end' });
        return chunk.length;
      }
    }
    return chunk.length;
  }

  private headers(chunk: Buffer, from: number, events: MultipartEvent[]): number {
    for (let i = from; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === CR) continue;
      if (c === LF) {
        if (this.lineLength === 0) {
          this.stateValue = 'data';
          this.matched = 0;
          this.pendingCr = false;
          events.push({ type: 'headersEnd' });
          return i + 1;
        }
        events.push({ type: 'header', line: this.line.toString('latin1', 0, this.lineLength) });
        this.lineLength = 0;
        continue;
      }
      if (this.lineLength >= this.maxLine) {
        throw new MultipartSyntaxError(`a part header line is longer than ${this.maxLine} bytes (upload_max_part_header_len ${this.maxLine + 1})`);
      }
      if (this.lineLength === this.line.length) {
        const bigger = Buffer.alloc(Math.min(this.maxLine, this.line.length * 2));
        this.line.copy(bigger, 0, 0, this.lineLength);
        this.line = bigger;
      }
      this.line[this.lineLength++] = c;
    }
    return chunk.length;
  }

  /** The bytes of a partial delimiter match carried over from an earlier chunk. */
  private carriedBytes(): Buffer {
    const body = this.delimiter.subarray(0, this.matched);
    return this.matchedCr ? Buffer.concat([Buffer.from([CR]), body]) : Buffer.from(body);
  }

  private data(chunk: Buffer, from: number, events: MultipartEvent[]): number {
    const delim = this.delimiter;
    const n = chunk.length;
    let i = from;
    /** Start of the data run not yet emitted. */
    let runStart = from;
    /** Where the current match started in this chunk (-1: it started in an earlier chunk). */
    let matchStart = -1;

    if (this.pendingCr) {
      this.pendingCr = false;
      if (chunk[i] === LF) {
        this.matched = 1;
        this.matchedCr = true;
        i++;
        runStart = i;
      } else {
        events.push({ type: 'data', data: Buffer.from([CR]) });
      }
    }
    const emit = (end: number) => {
      if (end > runStart) events.push({ type: 'data', data: chunk.subarray(runStart, end) });
    };

    while (i < n) {
      if (this.matched === 0) {
        const lf = chunk.indexOf(LF, i);
        if (lf < 0) {
          // No delimiter can start in the rest of this chunk, except at a final CR.
          if (chunk[n - 1] === CR) {
            emit(n - 1);
            this.pendingCr = true;
          } else {
            emit(n);
          }
          return n;
        }
        this.matchedCr = lf > i && chunk[lf - 1] === CR;
        matchStart = this.matchedCr ? lf - 1 : lf;
        this.matched = 1;
        i = lf + 1;
        continue;
      }
      if (chunk[i] === delim[this.matched]) {
        i++;
        if (++this.matched === delim.length) {
          if (matchStart >= 0) emit(matchStart);
          this.matched = 0;
          this.stateValue = 'afterDelimiter';
          events.push({ type: 'partEnd' });
          return i;
        }
        continue;
      }
      // A broken look-alike: its bytes are data, and this byte is examined again.
      if (matchStart < 0) {
        events.push({ type: 'data', data: this.carriedBytes() });
        runStart = i;
      }
      this.matched = 0;
      matchStart = -1;
    }
    // The chunk ends inside a possible delimiter: keep it back.
    if (this.matched > 0 && matchStart >= 0) emit(matchStart);
    else if (this.matched === 0) emit(n);
    return n;
  }
}
