/**
 * nginx-upload-progress-module's format, pure (spec upload-progress-module.md): id extraction (§3,
 * P3, P5), the JSONP callback (§6.3, P4), state selection (§7, P1, P6, P7, P8), and every output of
 * the §5.3 matrix byte for byte.
 */
import fc from 'fast-check';
import { parseTemplate } from '../../src/protocol/templates';
import type { ProgressTemplates } from '../../src/config/types';
import {
  acceptsEventStream,
  callbackFrom,
  OUTPUT_CONTENT_TYPES,
  outputTemplates,
  parseProgressStateName,
  progressIdFrom,
  progressView,
  queryArgument,
  renderProbe,
  type ProgressFigures,
  type ProgressOutput,
} from '../../src/protocol/upload-progress';

const H = 'X-Progress-ID';

describe('the progress id (§3)', () => {
  test.each([
    ['X-Progress-ID=abc', 'abc'],
    ['a=1&X-Progress-ID=abc&b=2', 'abc'],
    ['X-Progress-ID=abc&X-Progress-ID=zzz', 'abc'],
    ['X-PROGRESS-ID=abc', 'abc'],
    ['x-progress-id=abc', 'abc'],
    ['X-Progress-ID=a&b=1', 'a'],
    ['X-Progress-ID=', ''],
    // P3 copied: the first character of the value never ends it.
    ['X-Progress-ID=&a=1', '&a=1'],
    ['X-Progress-ID=&', '&'],
    ['X-Progress-ID=&&', '&'],
    ['X-Progress-ID=abc%20d', 'abc%20d'],
    ['X-Progress-ID=abc+d', 'abc+d'],
    ['X-Progress-ID=u3%2Fx', 'u3%2Fx'],
    // A substring anywhere; a name followed by something other than `=` is skipped.
    ['fooX-Progress-ID=abc', 'abc'],
    ['zzX-Progress-ID=u2', 'u2'],
    ['X-Progress-IDx=1&X-Progress-ID=abc', 'abc'],
  ])('query %j → %j', (query, id) => {
    expect(progressIdFrom([], `/progress?${query}`, H)).toBe(id);
  });

  test('no id: no header, no `N=` in the query', () => {
    expect(progressIdFrom([], '/progress', H)).toBeNull();
    expect(progressIdFrom([], '/progress?X-Progress-IDx=1', H)).toBeNull();
    expect(progressIdFrom([], '/progress?', H)).toBeNull();
    expect(progressIdFrom(['X-Upload-Key', 'k'], '/progress', H)).toBeNull();
  });

  test('the header first (any case, trimmed, the first of several), and it beats the query', () => {
    expect(progressIdFrom(['Host', 'x', 'x-progress-id', '  ws1   '], '/', H)).toBe('ws1');
    expect(progressIdFrom(['X-Progress-ID', 'first', 'X-Progress-ID', 'second'], '/', H)).toBe('first');
    expect(progressIdFrom(['X-Progress-ID', 'hdrid'], '/upload?X-Progress-ID=argid', H)).toBe('hdrid');
    // An empty header value is a valid id (the empty string).
    expect(progressIdFrom(['X-Progress-ID', ''], '/?X-Progress-ID=q', H)).toBe('');
  });

  test('upload_progress_header renames both the header and the argument; X-Progress-ID is then ignored', () => {
    expect(progressIdFrom(['X-Upload-Key', 'k1'], '/', 'X-Upload-Key')).toBe('k1');
    expect(progressIdFrom([], '/?X-Upload-Key=k2', 'X-Upload-Key')).toBe('k2');
    expect(progressIdFrom(['X-Progress-ID', 'k3'], '/?X-Progress-ID=k3', 'X-Upload-Key')).toBeNull();
  });

  test('P5 fixed: ids of 256 bytes and more are ids like any other', () => {
    const long = 'x'.repeat(4000);
    expect(progressIdFrom([H, long], '/', H)).toBe(long);
  });

  test('ids are byte strings, compared exactly (case-sensitive)', () => {
    expect(progressIdFrom([H, 'CaseID'], '/', H)).not.toBe('caseid');
    expect(progressIdFrom([H, 'caf\u00c3\u00a9'], '/', H)).toBe('caf\u00c3\u00a9');
  });

  test('property: a query argument is the text between `N=` and the next `&` after its first character', () => {
    const value = fc.string({ unit: fc.constantFrom('a', 'b', '&', '=', '%', '+'), maxLength: 10 });
    fc.assert(
      fc.property(fc.constantFrom('', 'a=1&', 'zz'), value, (prefix, v) => {
        const got = queryArgument(`${prefix}X-Progress-ID=${v}`, H, true);
        const cut = v.indexOf('&', 1);
        expect(got).toBe(v.length === 0 ? '' : cut < 0 ? v : v.slice(0, cut));
      }),
    );
  });
});

describe('the JSONP callback (§6.3)', () => {
  test.each([
    ['X-Progress-ID=cbt&callback=fn', 'fn'],
    ['callback=fn&X-Progress-ID=cbt', 'fn'],
    ['X-Progress-ID=cbt&mycallback=fn', 'fn'],
    ['X-Progress-ID=cbt&Callback=fn', ''],
    ['X-Progress-ID=cbt&callback=', ''],
    ['X-Progress-ID=cbt&callback=x&callback=y', 'x'],
    ['X-Progress-ID=cbt&callback=jQuery1234_5678', 'jQuery1234_5678'],
    ['X-Progress-ID=cbt&callback=app.progress.update', 'app.progress.update'],
    ['X-Progress-ID=cbt&callback=$cb', '$cb'],
  ])('%j → %j', (query, callback) => {
    expect(callbackFrom(`/p?${query}`, 'callback')).toBe(callback);
  });

  test('no query string at all → empty', () => {
    expect(callbackFrom('/progress', 'callback')).toBe('');
  });

  test('upload_progress_jsonp_parameter cb: cb=F works, callback=F does not', () => {
    expect(callbackFrom('/p-cb?cb=F', 'cb')).toBe('F');
    expect(callbackFrom('/p-cb?callback=F', 'cb')).toBe('');
  });

  // P4 fixed: the module reflects these raw (`&x=1(`, `a%20b%3C(`, a script tag): JSONP injection.
  test.each(['&x=1', 'a%20b%3C', '<script>alert(1)</script>', 'alert(1);f', 'a b', 'x"y'])('P4: an unsafe callback %j is dropped', (callback) => {
    expect(callbackFrom(`/p?X-Progress-ID=cbt&callback=${callback}`, 'callback')).toBe('');
  });
});

describe('state selection (§7)', () => {
  const entry = (figures: Partial<ProgressFigures>): ProgressFigures => ({ size: 3000, received: 0, finished: false, status: 0, ...figures });

  test('no entry → starting, P8 fixed: its variables are 0', () => {
    expect(progressView(undefined)).toEqual({ state: 'starting', length: 0, received: 0, remaining: 0, status: 0 });
  });

  test('P1 fixed: a registered upload before its first byte is uploading 0 of size', () => {
    expect(progressView(entry({}))).toEqual({ state: 'uploading', length: 3000, received: 0, remaining: 3000, status: 0 });
  });

  test('uploading: received = bytes so far', () => {
    expect(progressView(entry({ received: 2000 }))).toEqual({ state: 'uploading', length: 3000, received: 2000, remaining: 1000, status: 0 });
  });

  test('finished → done; P7 copied: a stored 3xx stays done', () => {
    expect(progressView(entry({ received: 3000, finished: true })).state).toBe('done');
    expect(progressView(entry({ received: 3000, finished: true, status: 302 }))).toEqual({ state: 'done', length: 3000, received: 3000, remaining: 0, status: 302 });
    expect(progressView(entry({ received: 3000, finished: true, status: 399 })).state).toBe('done');
  });

  test('status ≥ 400 → error, also before finishing, and error beats done', () => {
    expect(progressView(entry({ status: 413 }))).toMatchObject({ state: 'error', status: 413 });
    expect(progressView(entry({ finished: true, status: 400 }))).toMatchObject({ state: 'error', status: 400 });
  });

  test('size 0 and nothing left → starting (an empty body while the backend works)', () => {
    expect(progressView(entry({ size: 0 })).state).toBe('starting');
    expect(progressView(entry({ size: 0, finished: true })).state).toBe('done');
  });

  test('P6 fixed: a chunked body counts real bytes; its size is -1 (unknown) until the body ends', () => {
    expect(progressView(entry({ size: -1, received: 8193 }))).toEqual({ state: 'uploading', length: -1, received: 8193, remaining: -1, status: 0 });
  });
});

describe('the §5.3 matrix, byte for byte', () => {
  // Upload of 3000 bytes: probe while 2000 were received; done after success; error from a 413.
  const uploading: ProgressFigures = { size: 3000, received: 2000, finished: false, status: 0 };
  const done: ProgressFigures = { size: 3000, received: 3000, finished: true, status: 0 };
  const error: ProgressFigures = { size: 0, received: 0, finished: true, status: 413 };
  const xml: ProgressTemplates = {
    starting: parseTemplate('<upload><state>starting</state></upload>'),
    uploading: parseTemplate('<upload><state>uploading</state><size>$uploadprogress_length</size><uploaded>$uploadprogress_received</uploaded><remaining>$uploadprogress_remaining</remaining></upload>'),
    done: parseTemplate('<upload><state>done</state><size>$uploadprogress_length</size><uploaded>$uploadprogress_received</uploaded></upload>'),
    error: parseTemplate('<upload><state>error</state><code>$uploadprogress_status</code></upload>'),
  };
  const sets: Record<string, [ProgressTemplates, string]> = {
    'default, no callback': [outputTemplates('jsonp'), ''],
    'default, callback=cb': [outputTemplates('jsonp'), 'cb'],
    json: [outputTemplates('json'), ''],
    'jsonp, callback=cb': [outputTemplates('jsonp'), 'cb'],
    java: [outputTemplates('java'), ''],
    'xml template': [xml, ''],
  };
  const matrix: Array<[string, ProgressFigures | undefined, string, number, string]> = [
    ['starting', undefined, 'default, no callback', 29, '({ "state" : "starting" });\r\n'],
    ['starting', undefined, 'default, callback=cb', 31, 'cb({ "state" : "starting" });\r\n'],
    ['starting', undefined, 'json', 26, '{ "state" : "starting" }\r\n'],
    ['starting', undefined, 'jsonp, callback=cb', 31, 'cb({ "state" : "starting" });\r\n'],
    ['starting', undefined, 'java', 38, "new Object({ 'state' : 'starting' })\r\n"],
    ['starting', undefined, 'xml template', 40, '<upload><state>starting</state></upload>'],
    ['uploading', uploading, 'default, no callback', 64, '({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n'],
    ['uploading', uploading, 'default, callback=cb', 66, 'cb({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n'],
    ['uploading', uploading, 'json', 61, '{ "state" : "uploading", "received" : 2000, "size" : 3000 }\r\n'],
    ['uploading', uploading, 'jsonp, callback=cb', 66, 'cb({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n'],
    ['uploading', uploading, 'java', 73, "new Object({ 'state' : 'uploading', 'received' : 2000, 'size' : 3000 })\r\n"],
    ['uploading', uploading, 'xml template', 110, '<upload><state>uploading</state><size>3000</size><uploaded>2000</uploaded><remaining>1000</remaining></upload>'],
    ['done', done, 'default, no callback', 25, '({ "state" : "done" });\r\n'],
    ['done', done, 'default, callback=cb', 27, 'cb({ "state" : "done" });\r\n'],
    ['done', done, 'json', 22, '{ "state" : "done" }\r\n'],
    ['done', done, 'jsonp, callback=cb', 27, 'cb({ "state" : "done" });\r\n'],
    ['done', done, 'java', 34, "new Object({ 'state' : 'done' })\r\n"],
    ['done', done, 'xml template', 78, '<upload><state>done</state><size>3000</size><uploaded>3000</uploaded></upload>'],
    ['error', error, 'default, no callback', 42, '({ "state" : "error", "status" : 413 });\r\n'],
    ['error', error, 'default, callback=cb', 44, 'cb({ "state" : "error", "status" : 413 });\r\n'],
    ['error', error, 'json', 39, '{ "state" : "error", "status" : 413 }\r\n'],
    ['error', error, 'jsonp, callback=cb', 44, 'cb({ "state" : "error", "status" : 413 });\r\n'],
    ['error', error, 'java', 51, "new Object({ 'state' : 'error', 'status' : 413 })\r\n"],
    ['error', error, 'xml template', 53, '<upload><state>error</state><code>413</code></upload>'],
  ];

  test.each(matrix)('%s, %s: %d bytes', (state, figures, set, length, body) => {
    const [templates, callback] = sets[set];
    const view = progressView(figures);
    expect(view.state).toBe(state);
    const bytes = renderProbe(templates, view, callback);
    expect(bytes.toString('latin1')).toBe(body);
    expect(bytes.length).toBe(length);
  });

  test('content types of the output directives (§5.2)', () => {
    expect(OUTPUT_CONTENT_TYPES).toEqual({ jsonp: 'application/javascript', json: 'application/json', java: 'text/javascript' });
  });

  test('custom templates: the §5.3 variables line; done and error may use sizes', () => {
    const t = parseTemplate('<state> st=$uploadprogress_status rcv=$uploadprogress_received len=$uploadprogress_length rem=$uploadprogress_remaining');
    const templates = { starting: t, uploading: t, done: t, error: t };
    const render = (f: ProgressFigures) => renderProbe(templates, progressView(f), '').toString('latin1');
    expect(render({ size: 3000, received: 2000, finished: false, status: 0 })).toBe('<state> st=0 rcv=2000 len=3000 rem=1000');
    expect(render({ size: 3000, received: 3000, finished: true, status: 0 })).toBe('<state> st=0 rcv=3000 len=3000 rem=0');
    expect(render({ size: 3000, received: 3000, finished: true, status: 302 })).toBe('<state> st=302 rcv=3000 len=3000 rem=0');
    expect(render({ size: 3000, received: 3000, finished: true, status: 404 })).toBe('<state> st=404 rcv=3000 len=3000 rem=0');
  });

  test('P8 fixed: a starting template with upload variables renders 0 for an unknown id', () => {
    const templates = { ...outputTemplates('json'), starting: parseTemplate('S $uploadprogress_length $uploadprogress_received $uploadprogress_remaining $uploadprogress_status') };
    expect(renderProbe(templates, progressView(undefined), '').toString()).toBe('S 0 0 0 0');
  });

  test('/p-partial (§11): a custom uploading template with the callback and $arg_x; the rest default JSONP', () => {
    const templates = {
      ...outputTemplates('jsonp'),
      starting: parseTemplate('S'),
      uploading: parseTemplate('U $uploadprogress_received/$uploadprogress_length cb=[$uploadprogress_callback] arg=[$arg_x]'),
    };
    const args = (name: string) => (name === 'arg_x' ? 'XX' : undefined);
    expect(renderProbe(templates, progressView(undefined), 'C', args).toString()).toBe('S');
    expect(renderProbe(templates, progressView(uploading), 'C', args).toString()).toBe('U 2000/3000 cb=[C] arg=[XX]');
    expect(renderProbe(templates, progressView(done), 'C', args).toString()).toBe('C({ "state" : "done" });\r\n');
    expect(renderProbe(templates, progressView({ size: 0, received: 0, finished: true, status: 503 }), 'C', args).toString()).toBe('C({ "state" : "error", "status" : 503 });\r\n');
  });

  test('literal text is sent as written in the configuration (UTF-8), values as the request sent them', () => {
    const templates = { ...outputTemplates('json'), starting: parseTemplate('état $uploadprogress_callback') };
    expect(renderProbe(templates, progressView(undefined), 'cb')).toEqual(Buffer.from('état cb', 'utf8'));
  });
});

describe('state names and Accept', () => {
  test.each([
    ['starting', 'starting'],
    ['st', 'starting'],
    ['uploading', 'uploading'],
    ['up', 'uploading'],
    ['done', 'done'],
    ['do', 'done'],
    ['error', 'error'],
    ['er', 'error'],
    ['s', null],
    ['sta', null],
    ['Done', null],
    ['bogus', null],
  ])('upload_progress_template state %j → %j', (name, state) => {
    expect(parseProgressStateName(name)).toBe(state);
  });

  test.each([
    ['text/event-stream', true],
    ['text/html, text/event-stream;q=0.9', true],
    ['TEXT/EVENT-STREAM', true],
    ['text/event-stream;q=0', false],
    ['application/json', false],
    ['*/*', false],
    [undefined, false],
  ])('Accept %j → event stream %s', (accept, expected) => {
    expect(acceptsEventStream(accept)).toBe(expected);
  });

  test('every output set has the four states', () => {
    for (const output of ['json', 'jsonp', 'java'] as ProgressOutput[]) expect(Object.keys(outputTemplates(output)).sort()).toEqual(['done', 'error', 'starting', 'uploading']);
  });
});
