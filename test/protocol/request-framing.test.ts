/** The framing rules checked on parsed request heads before any handler runs (D24). */
import { closesConnection, requestFramingProblem } from '../../src/protocol/request-framing';

const head = (rawHeaders: string[], httpVersionMajor = 1, httpVersionMinor = 1) => ({ rawHeaders, httpVersionMajor, httpVersionMinor });

describe('requestFramingProblem', () => {
  test.each<[string, number, string[], number, RegExp]>([
    ['Transfer-Encoding twice', 400, ['Transfer-Encoding', 'identity', 'transfer-encoding', 'chunked'], 1, /more than once/],
    ['Transfer-Encoding with Content-Length', 400, ['Transfer-Encoding', 'chunked', 'Content-Length', '5'], 1, /both Content-Length and Transfer-Encoding/],
    ['a coding other than chunked', 501, ['Transfer-Encoding', 'gzip, chunked'], 1, /^Transfer-Encoding "gzip, chunked" is not supported: only chunked$/],
    ['an empty Transfer-Encoding', 400, ['Transfer-Encoding', ''], 1, /^Transfer-Encoding "" does not end with chunked$/],
    ['chunked not last', 400, ['Transfer-Encoding', 'chunked, gzip'], 1, /does not end with chunked/],
    ['no chunked at all', 400, ['Transfer-Encoding', 'gzip'], 1, /does not end with chunked/],
    ['Host twice', 400, ['Host', 'a', 'HOST', 'b'], 1, /Host given more than once/],
    ['HTTP/2', 505, [], 2, /HTTP\/2 is not supported/],
  ])('%s → %i', (_label, status, rawHeaders, major, reason) => {
    const problem = requestFramingProblem(head(rawHeaders, major));
    expect(problem?.status).toBe(status);
    expect(problem?.reason).toMatch(reason);
  });

  test.each([
    [['Host', 'x', 'Transfer-Encoding', 'chunked']],
    [['Host', 'x', 'Transfer-Encoding', ' Chunked ']],
    [['Host', 'x', 'Transfer-Encoding', ', chunked']],
    [['Host', 'x', 'Content-Length', '5']],
    [[]],
  ])('%j is fine', (rawHeaders) => {
    expect(requestFramingProblem(head(rawHeaders))).toBeNull();
  });
});

describe('closesConnection', () => {
  test('an upgrade request, or HTTP/1.0 with Transfer-Encoding', () => {
    expect(closesConnection(head(['Connection', 'keep-alive, Upgrade', 'Upgrade', 'h2c']))).toBe(true);
    expect(closesConnection(head(['Transfer-Encoding', 'chunked', 'Connection', 'keep-alive'], 1, 0))).toBe(true);
  });
  test('an Upgrade header without Connection: upgrade, or a plain request, keeps the connection', () => {
    expect(closesConnection(head(['Upgrade', 'h2c']))).toBe(false);
    expect(closesConnection(head(['Connection', 'upgraded']))).toBe(false);
    expect(closesConnection(head(['Transfer-Encoding', 'chunked']))).toBe(false);
  });
});
