/**
 * Inheritance (spec §10): scalar settings flow from the top level (and http, server) into
 * locations unless overridden; list settings are inherited as a whole, only when the location
 * defines none — there is no merging.
 */
import { CONF_DIR, parse } from './helpers';

function locations(text: string) {
  return Object.fromEntries(parse(text).locations.map((l) => [l.path, l]));
}

describe('inheritance', () => {
  test('scalar settings are inherited and overridden', () => {
    const { '/a': a, '/b': b } = locations(
      [
        'upload_resumable on;',
        'upload_max_file_size 10m;',
        'upload_store /top 2;',
        'upload_store_access user:rw group:r;',
        'upload_fsync off;',
        'upload_session_timeout 1h;',
        'proxy_read_timeout 5s;',
        'location /a { upload_pass http://b:1; }',
        'location /b {',
        '  upload_pass http://b:1;',
        '  upload_resumable off;',
        '  upload_max_file_size 0;',
        '  upload_store /own;',
        '  upload_fsync on;',
        '  proxy_read_timeout 1s;',
        '}',
      ].join('\n'),
    );
    expect(a).toMatchObject({
      resumable: true,
      maxFileSize: 10 * 1024 * 1024,
      store: { dir: '/top', levels: [2] },
      storeAccess: 0o640,
      fsync: false,
      sessionTimeoutMs: 3_600_000,
      backendReadTimeoutMs: 5000,
    });
    expect(b).toMatchObject({
      resumable: false,
      maxFileSize: 0,
      store: { dir: '/own', levels: [] },
      storeAccess: 0o640,
      fsync: true,
      sessionTimeoutMs: 3_600_000,
      backendReadTimeoutMs: 1000,
    });
    // Not set anywhere: the default, with the default store next to the file.
    expect(a.stateStore).toEqual({ dir: `${CONF_DIR}/data/state`, levels: [] });
  });

  test.each([
    ['upload_set_form_field', 'setFormFields', 'a "$upload_file_name"', 'b "$upload_tmp_path"', 'c "$upload_field_name"'],
    ['upload_aggregate_form_field', 'aggregateFormFields', 'a "$upload_file_md5"', 'b "$upload_file_size"', 'c "$upload_file_crc32"'],
    ['upload_add_header', 'addHeaders', 'X-A a', 'X-B b', 'X-C c'],
  ] as const)('%s lists are inherited whole, only by a location without any', (directive, key, first, second, own) => {
    const { '/inherits': inherits, '/own': mine } = locations(
      [
        `${directive} ${first};`,
        `${directive} ${second};`,
        'location /inherits { upload_pass http://b:1; }',
        `location /own { upload_pass http://b:1; ${directive} ${own}; }`,
      ].join('\n'),
    );
    expect(inherits[key].map((f) => f.name.source)).toEqual([first.split(' ')[0], second.split(' ')[0]]);
    expect(mine[key].map((f) => f.name.source)).toEqual([own.split(' ')[0]]);
  });

  test('upload_pass_form_field and upload_cleanup lists are inherited whole, only by a location without any', () => {
    const { '/inherits': inherits, '/own': mine } = locations(
      [
        'upload_pass_form_field ^a$;',
        'upload_pass_form_field ^b$;',
        'upload_cleanup 400 404;',
        'upload_cleanup 500-505;',
        'location /inherits { upload_pass http://b:1; }',
        'location /own { upload_pass http://b:1; upload_pass_form_field ^c$; upload_cleanup 502; }',
      ].join('\n'),
    );
    expect(inherits.passFormFields).toEqual(['^a$', '^b$']);
    expect(inherits.cleanup).toEqual([
      [400, 400],
      [404, 404],
      [500, 505],
    ]);
    expect(mine.passFormFields).toEqual(['^c$']);
    expect(mine.cleanup).toEqual([[502, 502]]);
  });

  test('top level → http → server → location, the innermost value wins', () => {
    const config = parse(
      [
        'upload_buffer_size 1k;',
        'upload_limit_rate 1k;',
        'client_max_body_size 1k;',
        'upload_tame_arrays on;',
        'http {',
        '  upload_buffer_size 2k;',
        '  upload_limit_rate 2k;',
        '  client_max_body_size 2k;',
        '  server {',
        '    upload_buffer_size 3k;',
        '    client_max_body_size 3k;',
        '    location /x {',
        '      upload_pass http://b:1;',
        '      upload_buffer_size 4k;',
        '    }',
        '  }',
        '}',
      ].join('\n'),
    );
    expect(config.clientMaxBodySize).toBe(3 * 1024);
    expect(config.locations[0]).toMatchObject({
      bufferSize: 4 * 1024,
      limitRate: 2 * 1024,
      clientMaxBodySize: 3 * 1024,
      tameArrays: true,
    });
  });

  test('list settings defined in http are replaced by the server level', () => {
    const config = parse(
      [
        'http {',
        '  upload_cleanup 400;',
        '  upload_pass_form_field ^http$;',
        '  server {',
        '    upload_cleanup 500;',
        '    location /x { upload_pass http://b:1; }',
        '  }',
        '}',
      ].join('\n'),
    );
    expect(config.locations[0].cleanup).toEqual([[500, 500]]);
    expect(config.locations[0].passFormFields).toEqual(['^http$']);
  });

  test('a location at the top level does not see the server block', () => {
    const config = parse(
      [
        'upload_max_file_size 1k;',
        'location /top { upload_pass http://b:1; }',
        'server {',
        '  upload_max_file_size 2k;',
        '  location /inner { upload_pass http://b:1; }',
        '}',
      ].join('\n'),
    );
    expect(config.locations.map((l) => [l.path, l.maxFileSize])).toEqual([
      ['/top', 1024],
      ['/inner', 2048],
    ]);
  });
});
