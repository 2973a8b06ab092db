/**
 * Fuzzing the header parsers (issue 9): any bytes a client can put into `Content-Range`,
 * `Session-ID`, `Content-Disposition`, multipart part headers, the multipart boundary or the
 * checksum headers give a value or a one-line printable reason, never an exception.
 * (test/adversarial/fuzz.test.ts sends the same kind of values to a real gateway process.)
 */
import * as fc from 'fast-check';
import { parseContentRange } from '../../src/protocol/content-range';
import { parseSessionId } from '../../src/protocol/session-id';
import { parseContentDisposition } from '../../src/protocol/content-disposition';
import { applyPartHeader, emptyPartHeaders, extractBoundary } from '../../src/protocol/multipart-headers';
import { parseChecksumHeaders } from '../../src/protocol/checksum';

const anyByte = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
/** A byte string: random bytes mixed with the pieces the parsers look for. */
function bytesWith(...pieces: string[]): fc.Arbitrary<string> {
  return fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...pieces) }, { weight: 2, arbitrary: anyByte }), { maxLength: 30 }).map((a) => a.join(''));
}

const ONE_LINE_REASON = /^[\x20-\x7e]+$/;
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const RUNS = { numRuns: 2000 };

test('Content-Range: a valid triple or a reason', () => {
  fc.assert(
    fc.property(bytesWith('bytes ', 'BYTES ', '0', '1', '9', '-', '/', '*', ' ', '9007199254740991', '9007199254740992', '00'), (value) => {
      const r = parseContentRange(value);
      if (r.ok) {
        const { start, end, total } = r.range;
        expect(Number.isSafeInteger(total) && start >= 0 && start <= end && end < total).toBe(true);
      } else {
        expect(r.reason).toMatch(ONE_LINE_REASON);
      }
    }),
    RUNS,
  );
});

test('Session-ID: an id of the allowed characters and length, or a reason', () => {
  fc.assert(
    fc.property(bytesWith('a', 'Z', '9', '_', '-', ' ', '\t', '.', '/', '0000000003'), fc.integer({ min: 1, max: 240 }), (value, max) => {
      const r = parseSessionId(value, max);
      if (r.ok) expect(r.id).toMatch(new RegExp(`^[A-Za-z0-9_-]{1,${max}}$`));
      else expect(r.reason).toMatch(ONE_LINE_REASON);
    }),
    RUNS,
  );
});

test('Content-Disposition: no control character, no path separator in a name, or a reason', () => {
  fc.assert(
    fc.property(bytesWith('attachment', 'form-data', ';', ',', ' ', 'filename=', 'filename*=', 'name=', '"', '\\', "UTF-8''", '%00', '%0D%0A', '%C3%A9', '%', '/'), (value) => {
      const r = parseContentDisposition(value);
      if (r.ok) {
        expect(r.fileName).not.toMatch(/[/\\]/);
        expect(r.fileName).not.toMatch(CONTROL);
        expect(r.fieldName).not.toMatch(CONTROL);
      } else {
        expect(r.reason).toMatch(ONE_LINE_REASON);
      }
    }),
    RUNS,
  );
});

test('multipart part headers: names without control characters, or a reason', () => {
  fc.assert(
    fc.property(fc.array(bytesWith('Content-Disposition:', 'content-type:', ' form-data; name="f"', '; filename="a.txt"', "; filename*=UTF-8''%01", ':', ' '), { maxLength: 4 }), (lines) => {
      const headers = emptyPartHeaders();
      for (const line of lines) {
        const r = applyPartHeader(headers, line);
        if (!r.ok) {
          expect(r.reason).toMatch(ONE_LINE_REASON);
          return;
        }
      }
      expect(headers.fileName).not.toMatch(CONTROL);
      expect(headers.fieldName).not.toMatch(CONTROL);
    }),
    RUNS,
  );
});

test('multipart boundary and checksum headers never throw', () => {
  fc.assert(
    fc.property(bytesWith('multipart/form-data', ';', 'boundary=', '"', ' '), bytesWith('sha-256=:', ':', 'md5=', '=', 'AAAA', ','), (contentType, digest) => {
      const boundary = extractBoundary(contentType);
      if (boundary.ok) expect(boundary.boundary.length).toBeGreaterThan(0);
      else expect(boundary.reason).toMatch(ONE_LINE_REASON);
      for (const input of [{ contentMd5: digest }, { reprDigest: digest }, { digest }]) {
        const r = parseChecksumHeaders(input);
        if (r && 'error' in r) expect(r.error).toMatch(ONE_LINE_REASON);
      }
    }),
    RUNS,
  );
});
