/**
 * Every directive of the file format: valid forms, defaults, and refused forms with the line and
 * the reason. Defaults are the module's (spec §10) unless the gateway's brief says otherwise.
 */
import * as path from 'node:path';
import { parseConfig } from '../../src/config/parse';
import { CONF_DIR, CONF_FILE, expectParseError, parse, parseLocation, uploadLocation } from './helpers';

const KiB = 1024;
const MiB = 1024 * 1024;

describe('defaults of an upload location', () => {
  test('a location with only upload_pass gets the module defaults', () => {
    const location = parseLocation('');
    expect(location).toMatchObject({
      match: 'prefix',
      path: '/up',
      origin: `${CONF_FILE}:1`,
      resumable: false,
      store: { dir: `${CONF_DIR}/data/store`, levels: [1] },
      stateStore: { dir: `${CONF_DIR}/data/state`, levels: [] },
      storeAccess: 0o600,
      setFormFields: [],
      aggregateFormFields: [],
      passFormFields: [],
      cleanup: [],
      addHeaders: [],
      bufferSize: 4096,
      maxPartHeaderLen: 512,
      maxFileSize: 0,
      maxOutputBodyLen: 100 * KiB,
      limitRate: 0,
      tameArrays: false,
      passArgs: false,
      emptyFieldNames: false,
      mergeBufferSize: 2048,
      rangeHeaderBufferSize: 256,
      clientMaxBodySize: 1 * MiB,
      clientBodyTimeoutMs: 60_000,
      sendTimeoutMs: 60_000,
      fsync: true,
      sessionTimeoutMs: 24 * 3600 * 1000,
      completedRetentionMs: 10 * 60 * 1000,
      sessionIdMaxLength: 200,
      backendConnectTimeoutMs: 60_000,
      backendReadTimeoutMs: 60_000,
    });
  });

  test('the gateway defaults: listen 127.0.0.1:8080, client_max_body_size 1m, no sample backend', () => {
    const config = parse('');
    expect(config).toEqual({
      source: CONF_FILE,
      listen: { host: '127.0.0.1', port: 8080 },
      clientMaxBodySize: MiB,
      clientHeaderTimeoutMs: 60_000,
      sendTimeoutMs: 60_000,
      locations: [],
      sampleBackend: null,
      progressZones: [],
      progressLocations: [],
      demoPage: false,
      metricsLocations: [],
      access: [],
      accessLog: null,
      errorLog: null,
      shutdownTimeoutMs: 30_000,
    });
  });
});

describe('listen', () => {
  test.each([
    ['127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }],
    ['8080', { host: '0.0.0.0', port: 8080 }],
    ['*:8080', { host: '0.0.0.0', port: 8080 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['[::]:81', { host: '::', port: 81 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['localhost', { host: 'localhost', port: 80 }],
    ['10.1.2.3', { host: '10.1.2.3', port: 80 }],
    ['127.0.0.1:8080 default_server', { host: '127.0.0.1', port: 8080 }],
  ])('listen %s', (value, listen) => {
    expect(parse(`listen ${value};`).listen).toEqual(listen);
  });

  test.each([
    ['listen;', 'invalid number of arguments in "listen" directive'],
    ['listen 70000;', 'invalid listen address "70000"'],
    ['listen host:port;', 'invalid listen address'],
    ['listen ::1:80;', 'invalid listen address'],
    ['listen unix:/tmp/x.sock;', 'unix sockets are not supported'],
    ['listen 80 ssl;', 'listen parameter "ssl" is not supported'],
  ])('%s is refused', (text, reason) => {
    expectParseError(`# comment\n${text}`, 2, reason);
  });

  test('only once', () => {
    expectParseError('listen 80;\nlisten 81;', 2, '"listen" directive is duplicate');
  });

  test('not in a location', () => {
    expectParseError(uploadLocation('listen 80;'), 3, '"listen" directive is not allowed here');
  });
});

describe('client_max_body_size', () => {
  test('top level value, inherited by locations; 0 = unlimited', () => {
    const config = parse(`client_max_body_size 100m;\n${uploadLocation('')}`);
    expect(config.clientMaxBodySize).toBe(100 * MiB);
    expect(config.locations[0].clientMaxBodySize).toBe(100 * MiB);
    expect(parse('client_max_body_size 0;').clientMaxBodySize).toBe(0);
  });

  test('a location may set its own; the top-level value stays', () => {
    const config = parse(`client_max_body_size 2m;\n${uploadLocation('client_max_body_size 1g;')}`);
    expect(config.clientMaxBodySize).toBe(2 * MiB);
    expect(config.locations[0].clientMaxBodySize).toBe(1024 * MiB);
  });

  test('invalid sizes', () => {
    expectParseError('client_max_body_size 10x;', 1, 'invalid size "10x"');
    expectParseError('client_max_body_size;', 1, 'invalid number of arguments in "client_max_body_size" directive');
  });
});

describe('client_header_timeout, client_body_timeout, send_timeout (nginx, D25)', () => {
  test('60s by default; a location inherits the top-level body and send timeouts and may set its own', () => {
    const config = parse([
      'client_header_timeout 10s;',
      'client_body_timeout 20s;',
      'send_timeout 30s;',
      uploadLocation('client_body_timeout 1500ms; send_timeout 2m;'),
      uploadLocation('', '/other'),
    ].join('\n'));
    expect(config).toMatchObject({ clientHeaderTimeoutMs: 10_000, sendTimeoutMs: 30_000 });
    expect(config.locations[0]).toMatchObject({ clientBodyTimeoutMs: 1500, sendTimeoutMs: 120_000 });
    expect(config.locations[1]).toMatchObject({ clientBodyTimeoutMs: 20_000, sendTimeoutMs: 30_000 });
    expect(config.locations[0]).not.toHaveProperty('clientHeaderTimeoutMs');
    expect(parse('http { server { client_header_timeout 5s; } }').clientHeaderTimeoutMs).toBe(5000);
  });

  test('client_header_timeout only at the top level (nginx: http, server)', () => {
    expectParseError(uploadLocation('client_header_timeout 5s;'), 3, '"client_header_timeout" directive is not allowed here');
  });

  test('send_timeout also in a progress location; client_body_timeout not', () => {
    const progress = ['upload_progress uploads 1m;', 'location /progress { report_uploads uploads; send_timeout 7s; }'].join('\n');
    expect(parse(progress).progressLocations[0].sendTimeoutMs).toBe(7000);
    expectParseError('upload_progress uploads 1m;\nlocation /progress { report_uploads uploads; client_body_timeout 7s; }', 2,
      '"client_body_timeout" has no effect in a location with "report_uploads"');
  });

  test.each(['client_header_timeout', 'client_body_timeout', 'send_timeout'])('%s refuses 0 and non-times', (directive) => {
    expectParseError(`${directive} 0;`, 1, `"${directive}" must be at least`);
    expectParseError(`${directive} 10x;`, 1, 'invalid time "10x"');
  });
});

describe('on|off directives', () => {
  test.each([
    ['upload_resumable', 'resumable'],
    ['upload_tame_arrays', 'tameArrays'],
    ['upload_pass_args', 'passArgs'],
    ['upload_empty_fiels_names', 'emptyFieldNames'],
    ['upload_empty_field_names', 'emptyFieldNames'],
    ['upload_fsync', 'fsync'],
  ] as const)('%s on|off', (directive, key) => {
    expect(parseLocation(`${directive} on;`)[key]).toBe(true);
    expect(parseLocation(`${directive} off;`)[key]).toBe(false);
  });

  test.each(['upload_resumable', 'upload_tame_arrays', 'upload_pass_args', 'upload_empty_fiels_names', 'upload_fsync'])(
    '%s refuses anything but exactly on or off',
    (directive) => {
      for (const value of ['On', 'OFF', 'yes', '1', 'true', '""']) {
        expectParseError(uploadLocation(`${directive} ${value};`), 3, `it must be "on" or "off"`);
      }
      expectParseError(uploadLocation(`${directive};`), 3, `invalid number of arguments in "${directive}" directive`);
      expectParseError(uploadLocation(`${directive} on off;`), 3, 'invalid number of arguments');
    },
  );

  test('both spellings of upload_empty_fiels_names in one block are a duplicate (D19)', () => {
    expectParseError(
      uploadLocation('upload_empty_fiels_names on;\n    upload_empty_field_names off;'),
      4,
      '"upload_empty_field_names" directive is duplicate',
    );
  });
});

describe('upload_store and upload_state_store', () => {
  test.each([
    ['upload_store', 'store'],
    ['upload_state_store', 'stateStore'],
  ] as const)('%s: directory and levels', (directive, key) => {
    expect(parseLocation(`${directive} /var/store;`)[key]).toEqual({ dir: '/var/store', levels: [] });
    expect(parseLocation(`${directive} /var/store/ 1;`)[key]).toEqual({ dir: '/var/store', levels: [1] });
    expect(parseLocation(`${directive} /var/store 1 2;`)[key]).toEqual({ dir: '/var/store', levels: [1, 2] });
    expect(parseLocation(`${directive} /var/store 2 2 1;`)[key]).toEqual({ dir: '/var/store', levels: [2, 2, 1] });
    expect(parseLocation(`${directive} "/var/my store";`)[key]).toEqual({ dir: '/var/my store', levels: [] });
  });

  test('relative directories are resolved against the configuration file directory', () => {
    expect(parseLocation('upload_store uploads 1;').store.dir).toBe(path.join(CONF_DIR, 'uploads'));
    expect(parseLocation('upload_state_store ../state;').stateStore.dir).toBe(path.resolve(CONF_DIR, '../state'));
    const other = parseConfig(uploadLocation('upload_store ./u;'), 'conf/sub/g.conf');
    expect(other.locations[0].store.dir).toBe(path.resolve('conf/sub/u'));
    expect(other.locations[0].stateStore.dir).toBe(path.resolve('conf/sub/data/state'));
  });

  test.each(['upload_store', 'upload_state_store'])('%s refusals', (directive) => {
    expectParseError(uploadLocation(`${directive} /s 3;`), 3, 'invalid level "3"');
    expectParseError(uploadLocation(`${directive} /s 0;`), 3, 'invalid level "0"');
    expectParseError(uploadLocation(`${directive} /s x;`), 3, 'invalid level "x"');
    expectParseError(uploadLocation(`${directive} /s 1 1 1 1;`), 3, `invalid number of arguments in "${directive}" directive`);
    expectParseError(uploadLocation(`${directive};`), 3, 'invalid number of arguments');
    expectParseError(uploadLocation(`${directive} /data/$host;`), 3, `variables in ${directive} are not supported`);
    expectParseError(uploadLocation(`${directive} "";`), 3, 'empty path');
    expectParseError(uploadLocation(`${directive} /a;\n    ${directive} /b;`), 4, `"${directive}" directive is duplicate`);
  });
});

describe('upload_store_access', () => {
  test.each([
    ['user:rw', 0o600],
    ['user:rw group:rw all:r', 0o664],
    ['group:rw', 0o660],
    ['all:r', 0o604],
    ['user:r', 0o400],
    ['user:r group:r all:r', 0o444],
    ['group:r all:rw', 0o646],
  ])('%s → %o', (value, mode) => {
    expect(parseLocation(`upload_store_access ${value};`).storeAccess).toBe(mode);
  });

  test('refusals', () => {
    expectParseError(uploadLocation('upload_store_access user:x;'), 3, 'invalid value "user:x"');
    expectParseError(uploadLocation('upload_store_access other:r;'), 3, 'invalid value "other:r"');
    expectParseError(uploadLocation('upload_store_access 0644;'), 3, 'invalid value "0644"');
    expectParseError(uploadLocation('upload_store_access user:rw group:r all:r user:r;'), 3, 'invalid number of arguments');
  });
});

describe('upload_set_form_field, upload_aggregate_form_field, upload_add_header', () => {
  test('templates in order', () => {
    const location = parseLocation(
      [
        'upload_set_form_field "${upload_field_name}_name" $upload_file_name;',
        'upload_set_form_field $upload_field_name.path "$upload_tmp_path";',
        'upload_aggregate_form_field "$upload_field_name.md5" "$upload_file_md5";',
        'upload_aggregate_form_field size $upload_file_size;',
        'upload_add_header X-Upload-Filename $upload_file_name;',
        'upload_add_header Access-Control-Allow-Origin "*";',
      ].join('\n'),
    );
    expect(location.setFormFields).toEqual([
      {
        name: { source: '${upload_field_name}_name', parts: [{ variable: 'upload_field_name' }, { literal: '_name' }] },
        value: { source: '$upload_file_name', parts: [{ variable: 'upload_file_name' }] },
      },
      {
        name: { source: '$upload_field_name.path', parts: [{ variable: 'upload_field_name' }, { literal: '.path' }] },
        value: { source: '$upload_tmp_path', parts: [{ variable: 'upload_tmp_path' }] },
      },
    ]);
    expect(location.aggregateFormFields.map((f) => [f.name.source, f.value.source])).toEqual([
      ['$upload_field_name.md5', '$upload_file_md5'],
      ['size', '$upload_file_size'],
    ]);
    expect(location.addHeaders.map((f) => [f.name.source, f.value.source])).toEqual([
      ['X-Upload-Filename', '$upload_file_name'],
      ['Access-Control-Allow-Origin', '*'],
    ]);
  });

  test.each(['upload_set_form_field', 'upload_aggregate_form_field', 'upload_add_header'])('%s takes two arguments', (directive) => {
    expectParseError(uploadLocation(`${directive} a;`), 3, `invalid number of arguments in "${directive}" directive`);
    expectParseError(uploadLocation(`${directive} a b c;`), 3, 'invalid number of arguments');
  });

  test.each(['upload_set_form_field', 'upload_add_header'])('%s refuses aggregate-only variables', (directive) => {
    for (const variable of ['upload_file_md5', 'upload_file_sha256_uc', 'upload_file_crc32', 'upload_file_size']) {
      expectParseError(uploadLocation(`${directive} x "$${variable}";`), 3, `"$${variable}" can be used only in upload_aggregate_form_field`);
      expectParseError(uploadLocation(`${directive} "\${${variable}}" v;`), 3, 'upload_aggregate_form_field');
    }
  });

  test('unknown variables and bad variable syntax', () => {
    expectParseError(uploadLocation('upload_set_form_field x $nope;'), 3, 'unknown "nope" variable');
    expectParseError(uploadLocation('upload_aggregate_form_field $upload_fiel_name x;'), 3, 'unknown "upload_fiel_name" variable');
    expectParseError(uploadLocation('upload_add_header X "${upload_file_name";'), 3, 'closing bracket');
    expectParseError(uploadLocation('upload_add_header X "a$";'), 3, 'invalid variable name');
  });

  test('request variables are accepted', () => {
    const location = parseLocation('upload_set_form_field id "$arg_id/$http_x_tag/$cookie_c/$remote_addr";');
    expect(location.setFormFields[0].value.parts.filter((p) => 'variable' in p)).toHaveLength(4);
  });
});

describe('upload_pass_form_field', () => {
  test('patterns in order, JavaScript RegExp syntax (D5)', () => {
    const location = parseLocation('upload_pass_form_field "^submit$|^description$";\nupload_pass_form_field ^(?<x>a)\\d+$;');
    expect(location.passFormFields).toEqual(['^submit$|^description$', '^(?<x>a)\\d+$']);
  });

  test('an invalid regular expression is refused', () => {
    expectParseError(uploadLocation('upload_pass_form_field "(";'), 3, 'invalid regular expression "("');
    expectParseError(uploadLocation('upload_pass_form_field a b;'), 3, 'invalid number of arguments');
  });
});

describe('upload_cleanup (spec §6)', () => {
  test('codes and ranges', () => {
    expect(parseLocation('upload_cleanup 400 404 499 500-505;').cleanup).toEqual([
      [400, 400],
      [404, 404],
      [499, 499],
      [500, 505],
    ]);
  });

  test('the module forms: 200–599, leading zeros, range when the 4th character is "-"', () => {
    expect(parseLocation('upload_cleanup 200 201 599 0500 500-0505;').cleanup).toEqual([
      [200, 200],
      [201, 201],
      [599, 599],
      [500, 500],
      [500, 505],
    ]);
  });

  test('repeated directives add up', () => {
    expect(parseLocation('upload_cleanup 400;\nupload_cleanup 500-599;').cleanup).toEqual([
      [400, 400],
      [500, 599],
    ]);
  });

  test.each([
    ['199', 'must be between 200 and 599'],
    ['600', 'must be between 200 and 599'],
    ['500-600', 'must be between 200 and 599'],
    ['50-60', 'invalid code "50-60"'],
    ['505-500', 'upper bound must be greater'],
    ['5x0-505', 'invalid lower bound'],
    ['500-5x5', 'invalid upper bound'],
    ['500-', 'invalid code "500-"'],
    ['abc', 'invalid code "abc"'],
    ['-500', 'invalid code'],
  ])('%s is refused', (value, reason) => {
    expectParseError(uploadLocation(`upload_cleanup 400 ${value};`), 3, reason);
  });

  test('needs at least one code', () => {
    expectParseError(uploadLocation('upload_cleanup;'), 3, 'invalid number of arguments in "upload_cleanup" directive');
  });
});

describe('size directives', () => {
  test.each([
    ['upload_buffer_size', 'bufferSize', '8k', 8 * KiB],
    ['upload_max_part_header_len', 'maxPartHeaderLen', '64', 64],
    ['upload_max_file_size', 'maxFileSize', '1000', 1000],
    ['upload_max_file_size', 'maxFileSize', '1g', 1024 * MiB],
    ['upload_max_file_size', 'maxFileSize', '0', 0],
    ['upload_max_output_body_len', 'maxOutputBodyLen', '2k', 2 * KiB],
    ['upload_max_output_body_len', 'maxOutputBodyLen', '0', 0],
    ['upload_limit_rate', 'limitRate', '20k', 20 * KiB],
    ['upload_merge_buffer_size', 'mergeBufferSize', '4k', 4 * KiB],
    ['upload_range_header_buffer_size', 'rangeHeaderBufferSize', '512', 512],
    ['upload_range_header_buffer_size', 'rangeHeaderBufferSize', '0', 0],
  ] as const)('%s %s', (directive, key, value, bytes) => {
    expect(parseLocation(`${directive} ${value};`)[key]).toBe(bytes);
  });

  test.each([
    'upload_buffer_size',
    'upload_max_part_header_len',
    'upload_max_file_size',
    'upload_max_output_body_len',
    'upload_limit_rate',
    'upload_merge_buffer_size',
    'upload_range_header_buffer_size',
  ])('%s refuses non-sizes, argument counts and duplicates', (directive) => {
    expectParseError(uploadLocation(`${directive} 1.5k;`), 3, 'invalid size "1.5k"');
    expectParseError(uploadLocation(`${directive} -1;`), 3, 'invalid size "-1"');
    expectParseError(uploadLocation(`${directive};`), 3, `invalid number of arguments in "${directive}" directive`);
    expectParseError(uploadLocation(`${directive} 1k 2k;`), 3, 'invalid number of arguments');
    expectParseError(uploadLocation(`${directive} 1k;\n    ${directive} 1k;`), 4, `"${directive}" directive is duplicate`);
  });

  test('sizes that would break the upload are refused', () => {
    expectParseError(uploadLocation('upload_buffer_size 0;'), 3, '"upload_buffer_size" must be at least 1');
    expectParseError(uploadLocation('upload_max_part_header_len 0;'), 3, 'must be at least 1');
    expectParseError(uploadLocation('upload_merge_buffer_size 100;'), 3, '"upload_merge_buffer_size" must be at least 128');
    expect(parseLocation('upload_merge_buffer_size 128;').mergeBufferSize).toBe(128);
  });
});

describe('gateway extensions', () => {
  test('time directives', () => {
    const location = parseLocation(
      [
        'upload_session_timeout 1h30m;',
        'upload_completed_retention 5s;',
        'proxy_connect_timeout 500ms;',
        'proxy_read_timeout 2m;',
      ].join('\n'),
    );
    expect(location).toMatchObject({
      sessionTimeoutMs: 5_400_000,
      completedRetentionMs: 5000,
      backendConnectTimeoutMs: 500,
      backendReadTimeoutMs: 120_000,
    });
    expect(parseLocation('upload_completed_retention 0;').completedRetentionMs).toBe(0);
    expect(parseLocation('proxy_read_timeout 90;').backendReadTimeoutMs).toBe(90_000);
  });

  test.each(['upload_session_timeout', 'upload_completed_retention', 'proxy_connect_timeout', 'proxy_read_timeout'])(
    '%s refuses non-times',
    (directive) => {
      expectParseError(uploadLocation(`${directive} 10x;`), 3, 'invalid time "10x"');
      expectParseError(uploadLocation(`${directive} 1 2;`), 3, 'invalid number of arguments');
    },
  );

  test('timeouts of zero are refused where they make no sense', () => {
    expectParseError(uploadLocation('upload_session_timeout 0;'), 3, '"upload_session_timeout" must be at least');
    expectParseError(uploadLocation('proxy_connect_timeout 0s;'), 3, '"proxy_connect_timeout" must be at least');
    expectParseError(uploadLocation('proxy_read_timeout 0ms;'), 3, '"proxy_read_timeout" must be at least');
  });

  test('upload_session_id_max_length 1..240 (D10)', () => {
    expect(parseLocation('upload_session_id_max_length 1;').sessionIdMaxLength).toBe(1);
    expect(parseLocation('upload_session_id_max_length 240;').sessionIdMaxLength).toBe(240);
    expectParseError(uploadLocation('upload_session_id_max_length 241;'), 3, 'from 1 to 240');
    expectParseError(uploadLocation('upload_session_id_max_length 0;'), 3, 'from 1 to 240');
    expectParseError(uploadLocation('upload_session_id_max_length 1k;'), 3, 'expected a number');
  });
});

describe('structure and contexts', () => {
  test('unknown directives', () => {
    expectParseError('listen 80;\nworker_processes 4;', 2, 'unknown directive "worker_processes"');
    expectParseError(uploadLocation('proxy_set_header Host $host;'), 3, 'unknown directive "proxy_set_header"');
    // upload_empty_field_names is accepted (D19), other misspellings are not.
    expectParseError(uploadLocation('upload_empty_fields_names on;'), 3, 'unknown directive "upload_empty_fields_names"');
  });

  test('if and limit_except blocks are refused', () => {
    expectParseError(uploadLocation('if ($request_method = GET) {\n        return 405;\n    }'), 3, '"if" blocks are not supported');
    expectParseError(uploadLocation('limit_except POST { deny all; }'), 3, '"limit_except" blocks are not supported');
  });

  test('location-only directives at the top level', () => {
    expectParseError('upload_pass http://b:1;', 1, '"upload_pass" directive is not allowed here');
    expectParseError('\nproxy_pass http://b:1;', 2, '"proxy_pass" directive is not allowed here');
    expectParseError('server {\n  internal;\n}', 2, '"internal" directive is not allowed here');
  });

  test('nested locations and misplaced blocks', () => {
    expectParseError(uploadLocation('location /in { upload_pass http://b:1; }'), 3, '"location" directive is not allowed here');
    expectParseError('server {\n  http { }\n}', 2, '"http" directive is not allowed here');
    expectParseError(uploadLocation('server { }'), 3, '"server" directive is not allowed here');
  });

  test('a block directive needs a block, a simple directive must not have one', () => {
    expectParseError('location /x;', 1, 'directive "location" has no opening "{"');
    expectParseError('http;', 1, 'has no opening "{"');
    expectParseError(uploadLocation('upload_resumable on { }'), 3, 'directive "upload_resumable" is not terminated by ";"');
  });

  test('http and server wrappers are treated like the top level', () => {
    const config = parse(
      [
        'http {',
        '  client_max_body_size 5m;',
        '  server {',
        '    listen 127.0.0.1:9001;',
        '    upload_resumable on;',
        '    location = /u {',
        '      upload_pass http://b:1;',
        '    }',
        '  }',
        '}',
      ].join('\n'),
    );
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9001 });
    expect(config.clientMaxBodySize).toBe(5 * MiB);
    expect(config.locations).toHaveLength(1);
    expect(config.locations[0]).toMatchObject({ match: 'exact', path: '/u', resumable: true, origin: `${CONF_FILE}:6` });
    expect(parse('server {\n  location /u { upload_pass http://b:1; }\n}').locations[0].path).toBe('/u');
    expect(parse('http {\n  location /u { upload_pass http://b:1; }\n}').locations[0].path).toBe('/u');
  });

  test('one http, one server', () => {
    expectParseError('http { }\nhttp { }', 2, '"http" directive is duplicate');
    expectParseError('http {\n  server { }\n  server { }\n}', 3, 'only one "server" block is supported');
    expectParseError('server { }\nhttp { }', 2, 'must enclose the "server" block');
    expectParseError('http { }\nserver { }', 2, 'must be inside the "http" block');
    expectParseError('http foo { }', 1, 'invalid number of arguments in "http" directive');
  });

  test('location forms', () => {
    const config = parse(
      [
        'location = /a { upload_pass http://b:1; }',
        'location =/b { upload_pass http://b:1; }',
        'location /c { upload_pass http://b:1; }',
        'location ^~ /d { upload_pass http://b:1; }',
        'location ^~/e { upload_pass http://b:1; }',
        'location /a { upload_pass http://b:1; }',
      ].join('\n'),
    );
    expect(config.locations.map((l) => [l.match, l.path, l.origin])).toEqual([
      ['exact', '/a', `${CONF_FILE}:1`],
      ['exact', '/b', `${CONF_FILE}:2`],
      ['prefix', '/c', `${CONF_FILE}:3`],
      ['prefix', '/d', `${CONF_FILE}:4`],
      ['prefix', '/e', `${CONF_FILE}:5`],
      ['prefix', '/a', `${CONF_FILE}:6`],
    ]);
  });

  test('location refusals', () => {
    expectParseError('\nlocation ~ \\.php$ { upload_pass http://b:1; }', 2, 'regular expression locations are not supported');
    expectParseError('location ~* /x { upload_pass http://b:1; }', 1, 'regular expression locations are not supported');
    expectParseError('location != /x { upload_pass http://b:1; }', 1, 'invalid location modifier "!="');
    expectParseError('location { }', 1, 'invalid number of arguments in "location" directive');
    expectParseError('location = /x y { }', 1, 'invalid number of arguments');
    expectParseError('location upload { upload_pass http://b:1; }', 1, 'must start with "/"');
    expectParseError('location = @x { proxy_pass http://b:1; }', 1, 'invalid location modifier "="');
  });

  test('a location needs upload_pass or proxy_pass', () => {
    expectParseError('listen 80;\nlocation /x {\n  upload_resumable on;\n}', 2, 'location "/x" has neither "upload_pass" nor "proxy_pass"');
  });

  test('two locations with the same match and path', () => {
    expectParseError(`${uploadLocation('')}location /up {\n  proxy_pass http://b:1;\n}`, 5, 'duplicate location "/up"');
    expectParseError('location = /x { upload_pass http://b:1; }\nlocation = /x { upload_pass http://b:1; }', 2, 'duplicate location "= /x"');
    expectParseError('location @b { proxy_pass http://b:1; }\n\nlocation @b { proxy_pass http://b:1; }', 3, 'duplicate location "@b"');
  });

  test('a scalar directive twice in one block; the same directive on two levels is fine', () => {
    expectParseError('upload_resumable on;\nupload_resumable off;', 2, '"upload_resumable" directive is duplicate');
    expectParseError(uploadLocation('upload_pass http://c:2;'), 3, '"upload_pass" directive is duplicate');
    expect(parse(`upload_resumable on;\n${uploadLocation('upload_resumable off;')}`).locations[0].resumable).toBe(false);
  });

  test('upload directives in a proxy-only location are refused', () => {
    expectParseError(
      `${uploadLocation('', '/u')}location /backend {\n  proxy_pass http://b:1;\n  upload_store /s;\n}`,
      7,
      '"upload_store" has no effect in a location without "upload_pass"',
    );
  });

  test('a proxy-only location accepts internal, timeouts and client_max_body_size, and is not an upload location', () => {
    const config = parse(
      [
        'location /backend {',
        '  internal;',
        '  proxy_pass http://b:1;',
        '  proxy_read_timeout 5s;',
        '  proxy_connect_timeout 1s;',
        '  client_max_body_size 0;',
        '}',
      ].join('\n'),
    );
    expect(config.locations).toEqual([]);
  });

  test('internal in an upload location is refused', () => {
    expectParseError(uploadLocation('internal;'), 3, '"internal" is not supported in an upload location');
    expectParseError('location /b {\n  internal x;\n  proxy_pass http://b:1;\n}', 2, 'invalid number of arguments in "internal" directive');
  });

  test('a byte order mark at the start is ignored', () => {
    expect(parse('\uFEFFlisten 81;').listen.port).toBe(81);
  });

  test('lexer errors carry the file and line', () => {
    expectParseError('listen 80;\nlocation /x {\n  upload_pass "http://b:1;\n}\n', 3, 'unterminated quoted string');
    expectParseError('listen 80;\n\nlocation /x {\n  upload_pass http://b:1;\n', 3, 'unexpected end of file');
  });
});
