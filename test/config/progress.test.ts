/**
 * The nginx-upload-progress-module directives (spec upload-progress-module.md §2) and
 * `upload_demo_page`: valid forms, defaults, the module's order rules, inheritance, and refused
 * forms with the line and the reason.
 */
import { embeddedDefaults } from '../../src/config/defaults';
import { resolveConfig } from '../../src/config/resolve';
import type { GatewayConfig, ProgressLocationConfig } from '../../src/config/types';
import { OUTPUT_TEMPLATE_SOURCES } from '../../src/protocol/upload-progress';
import { expectParseError, parse } from './helpers';

const UPLOAD = 'location /up {\n  upload_pass http://backend:9000;\n  track_uploads z 5s;\n}\n';

function report(body: string, top = ''): ProgressLocationConfig {
  const config = parse(`upload_progress z 1m;\n${top}\nlocation = /progress {\n  ${body}\n  report_uploads z;\n}\n`);
  expect(config.progressLocations).toHaveLength(1);
  return config.progressLocations[0];
}

function sources(location: ProgressLocationConfig): Record<string, string> {
  return Object.fromEntries(Object.entries(location.templates).map(([state, t]) => [state, t.source]));
}

describe('upload_progress', () => {
  test('declares a zone of a size', () => {
    const config = parse('upload_progress proxied 1m;');
    expect(config.progressZones).toEqual([{ name: 'proxied', size: 1024 * 1024, stateRedis: null, origin: '/srv/gateway/gateway.conf:1' }]);
  });

  test('inside http { } too', () => {
    expect(parse('http {\n  upload_progress a 64k;\n}').progressZones.map((z) => z.name)).toEqual(['a']);
  });

  test.each([
    ['upload_progress z 16k;', 1, 'upload_progress "z" is too small'],
    ['upload_progress z 1m;\nupload_progress z 2m;', 2, 'upload_progress "z" is already created'],
    ['upload_progress z;', 1, 'invalid number of arguments in "upload_progress" directive'],
    ['upload_progress z 1x;', 1, 'invalid size'],
    ['server {\n  upload_progress z 1m;\n}', 2, '"upload_progress" directive is not allowed here'],
    ['location /up {\n  upload_pass http://b:1;\n  upload_progress z 1m;\n}', 3, 'not allowed here'],
  ])('%j is refused', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('track_uploads', () => {
  test('tracks a location in a zone, with the finished-entry timeout', () => {
    const config = parse(`upload_progress z 1m;\n${UPLOAD}`);
    expect(config.locations[0].trackUploads).toEqual({ zone: 'z', timeoutMs: 5000 });
    expect(config.locations[0].progressHeader).toBe('X-Progress-ID');
  });

  test('at the top level it is every location\'s default; nginx time syntax', () => {
    const config = parse('upload_progress z 1m;\ntrack_uploads z 1m;\nlocation /a { upload_pass http://b:1; }\nlocation /b { upload_pass http://b:1; track_uploads z 30; }');
    expect(config.locations.map((l) => l.trackUploads)).toEqual([{ zone: 'z', timeoutMs: 60_000 }, { zone: 'z', timeoutMs: 30_000 }]);
  });

  test('not tracked without the directive', () => {
    expect(parse('location /a { upload_pass http://b:1; }').locations[0].trackUploads).toBeNull();
  });

  test.each([
    [UPLOAD, 3, 'zero size shared memory zone "z"'],
    [`upload_progress z 1m;\nlocation /up {\n  upload_pass http://b:1;\n  track_uploads z soon;\n}`, 4, 'track_uploads "z" timeout value invalid'],
    [`upload_progress z 1m;\nlocation /up {\n  upload_pass http://b:1;\n  track_uploads z;\n}`, 4, 'invalid number of arguments in "track_uploads" directive'],
    [`upload_progress z 1m;\nlocation /up {\n  upload_pass http://b:1;\n  track_uploads z 5s;\n  track_uploads z 6s;\n}`, 5, '"track_uploads" directive is duplicate'],
    [`upload_progress z 1m;\nlocation @b {\n  proxy_pass http://b:1;\n  track_uploads z 5s;\n}`, 4, '"track_uploads" has no effect in a location without "upload_pass"'],
  ])('%j is refused', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('report_uploads and the output directives', () => {
  test('defaults: the JSONP templates, text/javascript, X-Progress-ID, callback (§2, §5)', () => {
    const location = report('');
    expect(location).toMatchObject({ match: 'exact', path: '/progress', zone: 'z', header: 'X-Progress-ID', jsonpParameter: 'callback', contentType: 'text/javascript' });
    expect(sources(location)).toEqual(OUTPUT_TEMPLATE_SOURCES.jsonp);
  });

  test.each([
    ['upload_progress_json_output;', 'json', 'application/json'],
    ['upload_progress_jsonp_output;', 'jsonp', 'application/javascript'],
    ['upload_progress_java_output;', 'java', 'text/javascript'],
  ] as const)('%s installs its four templates and content type', (directive, set, type) => {
    const location = report(directive);
    expect(location.contentType).toBe(type);
    expect(sources(location)).toEqual(OUTPUT_TEMPLATE_SOURCES[set]);
  });

  test('content type before an output directive: the output wins (§2)', () => {
    expect(report("upload_progress_content_type 'text/plain';\n  upload_progress_json_output;").contentType).toBe('application/json');
  });

  test('content type after an output directive is a duplicate (§2)', () => {
    expectParseError("upload_progress z 1m;\nlocation = /p {\n  upload_progress_json_output;\n  upload_progress_content_type 'text/plain';\n  report_uploads z;\n}", 4, '"upload_progress_content_type" directive is duplicate');
  });

  test('a content type is sent verbatim; a second one is a duplicate', () => {
    expect(report("upload_progress_content_type 'text/plain; charset=utf-8';").contentType).toBe('text/plain; charset=utf-8');
    expectParseError('upload_progress z 1m;\nlocation = /p {\n  upload_progress_content_type a/b;\n  upload_progress_content_type c/d;\n  report_uploads z;\n}', 4, 'is duplicate');
  });

  test('repeating output directives, or json then jsonp, is accepted: the last wins', () => {
    expect(sources(report('upload_progress_json_output;\n  upload_progress_jsonp_output;'))).toEqual(OUTPUT_TEMPLATE_SOURCES.jsonp);
    expect(report('upload_progress_json_output;\n  upload_progress_jsonp_output;').contentType).toBe('application/javascript');
    expect(report('upload_progress_json_output;\n  upload_progress_json_output;').contentType).toBe('application/json');
  });

  test('output then template: that state is the template; template then output: all JSON (§2)', () => {
    expect(sources(report("upload_progress_json_output;\n  upload_progress_template done 'DONE';"))).toEqual({ ...OUTPUT_TEMPLATE_SOURCES.json, done: 'DONE' });
    expect(sources(report("upload_progress_template done 'DONE';\n  upload_progress_json_output;"))).toEqual(OUTPUT_TEMPLATE_SOURCES.json);
  });

  test('states by name or by their first two letters; each inherited on its own (§2, §11 /p-partial)', () => {
    const location = report("upload_progress_template starting 'S';\n  upload_progress_template up 'U $uploadprogress_received/$uploadprogress_length cb=[$uploadprogress_callback] arg=[$arg_x]';");
    expect(sources(location)).toEqual({
      ...OUTPUT_TEMPLATE_SOURCES.jsonp,
      starting: 'S',
      uploading: 'U $uploadprogress_received/$uploadprogress_length cb=[$uploadprogress_callback] arg=[$arg_x]',
    });
    expect(location.contentType).toBe('text/javascript');
    const inherited = report("upload_progress_template er 'E';", "upload_progress_java_output;\nupload_progress_template st 'S0';");
    expect(sources(inherited)).toEqual({ ...OUTPUT_TEMPLATE_SOURCES.java, starting: 'S0', error: 'E' });
    expect(inherited.contentType).toBe('text/javascript');
  });

  test('upload_progress_header and upload_progress_jsonp_parameter', () => {
    const location = report('upload_progress_header X-Upload-Key;\n  upload_progress_jsonp_parameter cb;');
    expect(location).toMatchObject({ header: 'X-Upload-Key', jsonpParameter: 'cb' });
    const config = parse(`upload_progress z 1m;\nupload_progress_header X-Key;\n${UPLOAD}`);
    expect(config.locations[0].progressHeader).toBe('X-Key');
  });

  test.each([
    ["upload_progress_template bogus 'x';", 3, 'unknown state "bogus"'],
    ["upload_progress_template Starting 'x';", 3, 'unknown state "Starting"'],
    ["upload_progress_template starting '$upload_file_name';", 3, 'cannot be used in upload_progress_template'],
    ["upload_progress_template starting '$nope';", 3, 'unknown "nope" variable'],
    ['upload_progress_json_output on;', 3, 'invalid number of arguments'],
    ['upload_progress_header "X Bad";', 3, 'invalid header name'],
    ['upload_store /tmp;', 3, '"upload_store" has no effect in a location with "report_uploads"'],
    ['upload_pass http://b:1;', 4, '"report_uploads" and "upload_pass" cannot be used in the same location'],
    ['proxy_pass http://b:1;', 4, '"report_uploads" and "proxy_pass" cannot be used in the same location'],
    ['report_uploads z;', 4, '"report_uploads" directive is duplicate'],
  ])('in a progress location, %j is refused', (body, line, reason) => {
    expectParseError(`upload_progress z 1m;\nlocation = /progress {\n  ${body}\n  report_uploads z;\n}`, line, reason);
  });

  test.each([
    ['location = /p {\n  report_uploads nozone;\n}', 2, 'zero size shared memory zone "nozone"'],
    ['upload_progress z 1m;\nreport_uploads z;', 2, '"report_uploads" directive is not allowed here'],
    ['upload_progress z 1m;\nlocation @p {\n  report_uploads z;\n}', 3, 'not supported in a named location'],
    ['upload_progress z 1m;\nlocation /up {\n  upload_pass http://b:1;\n  upload_set_form_field a $uploadprogress_received;\n}', 4, 'can be used only in upload_progress_template'],
  ])('%j is refused', (text, line, reason) => {
    expectParseError(text, line, reason);
  });

  test('prefix progress locations and several of them', () => {
    const config = parse('upload_progress z 1m;\nlocation ^~ /progress { report_uploads z; }\nlocation = /p-json { upload_progress_json_output; report_uploads z; }');
    expect(config.progressLocations.map((l) => [l.match, l.path, l.contentType])).toEqual([
      ['prefix', '/progress', 'text/javascript'],
      ['exact', '/p-json', 'application/json'],
    ]);
    expect(config.locations).toEqual([]);
  });
});

describe('where a zone lives', () => {
  test('in Redis when the locations using it have upload_state_redis', () => {
    const config = parse(`upload_state_redis redis://r:6379/0;\nupload_progress z 1m;\n${UPLOAD}location = /p { report_uploads z; }`);
    expect(config.progressZones[0].stateRedis).toBe('redis://r:6379/0');
  });

  test('locations that disagree are refused', () => {
    expectParseError(`upload_progress z 1m;\n${UPLOAD}location = /p {\n  upload_state_redis redis://r:6379/0;\n  report_uploads z;\n}`, 8, 'is used with upload_state_redis redis://r:6379/0 here and off at');
  });
});

describe('upload_demo_page', () => {
  test('off by default, on|off at the top level', () => {
    expect(parse('').demoPage).toBe(false);
    expect(parse('upload_demo_page on;').demoPage).toBe(true);
    expect(parse('server {\n  upload_demo_page off;\n}').demoPage).toBe(false);
  });

  test.each([
    ['upload_demo_page yes;', 1, 'it must be "on" or "off"'],
    ['upload_demo_page on;\nupload_demo_page off;', 2, '"upload_demo_page" directive is duplicate'],
    ['location /up {\n  upload_pass http://b:1;\n  upload_demo_page on;\n}', 3, 'not allowed here'],
  ])('%j is refused', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('from code and in the embedded defaults', () => {
  function comparable(config: GatewayConfig) {
    const clean = (x: { origin: string }) => ({ ...x, origin: null });
    return { ...config, source: null, locations: config.locations.map(clean), progressLocations: config.progressLocations.map(clean), progressZones: config.progressZones.map(clean) };
  }

  test('resolveConfig gives what the file gives', () => {
    const fromObject = resolveConfig(
      {
        demoPage: true,
        progressZones: { z: '1m' },
        locations: [{ path: '/up', uploadPass: 'http://backend:9000', trackUploads: { zone: 'z', timeout: '5s' } }],
        progressLocations: [
          { path: '/progress', match: 'exact', reportUploads: 'z', progressOutput: 'json', progressTemplates: { done: 'DONE' } },
          { path: '/p-hdr', reportUploads: 'z', progressHeader: 'X-Upload-Key', progressJsonpParameter: 'cb', progressContentType: 'text/plain' },
        ],
      },
      '/srv/gateway',
    );
    const fromFile = parse(`upload_demo_page on;\nupload_progress z 1m;\n${UPLOAD}
location = /progress { upload_progress_json_output; upload_progress_template done DONE; report_uploads z; }
location /p-hdr { upload_progress_header X-Upload-Key; upload_progress_jsonp_parameter cb; upload_progress_content_type text/plain; report_uploads z; }`);
    expect(comparable(fromObject)).toEqual(comparable(fromFile));
  });

  test('resolveConfig refuses an unknown zone and a small zone', () => {
    expect(() => resolveConfig({ progressLocations: [{ path: '/p', reportUploads: 'nope' }] })).toThrow('zero size shared memory zone "nope"');
    expect(() => resolveConfig({ progressZones: { z: '8k' } })).toThrow('upload_progress "z" is too small');
    expect(() => resolveConfig({ progressZones: { z: '1m' }, progressLocations: [{ path: '/p', reportUploads: 'z', store: '/x' } as never] })).toThrow('store');
  });

  test('the embedded defaults: the page, the zone "uploads", /upload tracked, /progress in JSON', () => {
    const config = embeddedDefaults({ dataDir: '/srv/data' });
    expect(config.demoPage).toBe(true);
    expect(config.progressZones.map((z) => [z.name, z.size, z.stateRedis])).toEqual([['uploads', 1024 * 1024, null]]);
    expect(config.locations[0].trackUploads).toEqual({ zone: 'uploads', timeoutMs: 30_000 });
    expect(config.progressLocations).toHaveLength(1);
    expect(config.progressLocations[0]).toMatchObject({ match: 'exact', path: '/progress', zone: 'uploads', contentType: 'application/json', header: 'X-Progress-ID' });
  });
});
