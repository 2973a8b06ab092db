/**
 * The multipart body the module hands to the backend (spec §4.6), built incrementally.
 *
 * ```
 * first field:   "--" B "\r\nContent-Disposition: form-data; name=\"" NAME "\"\r\n\r\n" VALUE
 * later fields:  "\r\n--" B "\r\nContent-Disposition: form-data; name=\"" NAME "\"\r\n\r\n" VALUE
 * end:           "\r\n--" B "--\r\n"
 * ```
 *
 * - NAME and VALUE are inserted verbatim (no escaping); strings are byte strings (latin1).
 * - A field with an empty name is skipped (and does not count as appended).
 * - No field ever appended → the dummy field `<ngx_upload_module_dummy>` with an empty value.
 * - Rollback quirk: if fields were appended but all were rolled back, the body is only the end
 *   delimiter `"\r\n--" B "--\r\n"` (no dummy). After a rollback to "no fields", the next field
 *   is again a first field (`"--" B`, no CRLF).
 *
 * The body is kept as a list of Buffers; value Buffers are referenced, not copied, so the caller
 * must not modify them afterwards. `finish()` concatenates once.
 */

export const DUMMY_FIELD_NAME = '<ngx_upload_module_dummy>';

const PART1 = '\r\nContent-Disposition: form-data; name="';
const PART2 = '"\r\n\r\n';

function toBytes(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
}

export class FormBodyBuilder {
  private readonly boundary: string;
  private readonly end: Buffer;
  private readonly pieces: Buffer[] = [];
  /** For each field present, the index in `pieces` of its header piece. */
  private readonly fieldStarts: number[] = [];
  /** Sum of the lengths of `pieces`. */
  private size = 0;
  /** A field was appended at some point (never reset by rollback: the module's quirk). */
  private everAppended = false;

  /** `boundary` is the byte string B (without the leading `--`). */
  constructor(boundary: string) {
    if (boundary.length === 0) throw new RangeError('FormBodyBuilder: empty boundary');
    this.boundary = boundary;
    this.end = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  }

  private push(piece: Buffer): void {
    this.pieces.push(piece);
    this.size += piece.length;
  }

  /** Append a field `name` = `value`. Skipped when `name` is empty. */
  appendField(name: string, value: string | Buffer): void {
    if (name.length === 0) return;
    const sep = this.fieldStarts.length === 0 ? '--' : '\r\n--';
    this.fieldStarts.push(this.pieces.length);
    this.push(Buffer.from(`${sep}${this.boundary}${PART1}${name}${PART2}`, 'latin1'));
    const bytes = toBytes(value);
    if (bytes.length > 0) this.push(bytes);
    this.everAppended = true;
  }

  /**
   * Append more bytes to the value of the last field (a passed client field whose data arrives
   * in chunks). Throws when there is no field.
   */
  appendFieldData(chunk: string | Buffer): void {
    if (this.fieldStarts.length === 0) throw new Error('FormBodyBuilder: no field to append data to');
    const bytes = toBytes(chunk);
    if (bytes.length > 0) this.push(bytes);
  }

  /** A position to roll back to later. */
  checkpoint(): number {
    return this.pieces.length;
  }

  /** Drop everything appended after `checkpoint()` returned `to`. */
  rollback(to: number): void {
    if (!Number.isInteger(to) || to < 0 || to > this.pieces.length) {
      throw new RangeError(`FormBodyBuilder: invalid rollback position ${String(to)}`);
    }
    while (this.pieces.length > to) this.size -= this.pieces.pop()!.length;
    while (this.fieldStarts.length > 0 && this.fieldStarts[this.fieldStarts.length - 1]! >= to) {
      this.fieldStarts.pop();
    }
  }

  /** Number of fields currently in the body (not counting the dummy). */
  get fieldCount(): number {
    return this.fieldStarts.length;
  }

  /** Bytes the finished body would have now. */
  get length(): number {
    if (this.fieldStarts.length > 0 || this.everAppended) return this.size + this.end.length;
    return this.dummy().length + this.end.length;
  }

  /** The complete body. The builder stays usable. */
  finish(): Buffer {
    if (this.fieldStarts.length > 0 || this.everAppended) {
      return Buffer.concat([...this.pieces, this.end], this.size + this.end.length);
    }
    const dummy = this.dummy();
    return Buffer.concat([dummy, this.end], dummy.length + this.end.length);
  }

  private dummy(): Buffer {
    return Buffer.from(`--${this.boundary}${PART1}${DUMMY_FIELD_NAME}${PART2}`, 'latin1');
  }
}

/** The boundary of a raw-mode hand-off (§5.2): the counter as 20 zero-padded decimal digits. */
export function rawModeBoundary(counter: number): string {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new RangeError(`rawModeBoundary: invalid counter ${String(counter)}`);
  }
  return String(counter).padStart(20, '0');
}
