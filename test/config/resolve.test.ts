import { ConfigError } from '../../src/config/errors';
import { parseConfig } from '../../src/config/parse';
import type { GatewayConfigInput } from '../../src/config/input';
import { resolveConfig } from '../../src/config/resolve';
import type { GatewayConfig } from '../../src/config/types';
import { configErrorOf } from './helpers';

const BASE = '/srv/app';

function resolveError(input: unknown): ConfigError {
  const err = configErrorOf(() => resolveConfig(input as GatewayConfigInput, BASE));
  expect(err.file).toBe('<object>');
  expect(err.line).toBe(0);
  expect(err.message).toBe(`<object>: ${err.reason}`);
  return err;
}

/** Everything but where it was defined. */
function comparable(config: GatewayConfig) {
  return { ...config, source: null, locations: config.locations.map((l) => ({ ...l, origin: null })) };
}

describe('resolveConfig', () => {
  test('the minimal object gets the same defaults as the minimal file', () => {
    const fromObject = resolveConfig({ locations: [{ path: '/up', uploadPass: 'http://backend:9000' }] }, BASE);
    const fromFile = parseConfig('location /up { upload_pass http://backend:9000; }', `${BASE}/g.conf`);
    expect(comparable(fromObject)).toEqual(comparable(fromFile));
    expect(fromObject.source).toBe('<object>');
    expect(fromObject.locations[0].origin).toBe('<object> locations[0]');
    expect(fromObject.locations[0].store.dir).toBe(`${BASE}/data/store`);
    expect(fromObject.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(fromObject.sampleBackend).toBeNull();
  });

  test('every setting, as object and as file, gives the same configuration', () => {
    const fromObject = resolveConfig(
      {
        listen: '127.0.0.1:9000',
        clientMaxBodySize: '100m',
        resumable: true,
        store: { dir: 'uploads', levels: [1, 2] },
        stateStore: '/var/state',
        storeAccess: 'user:rw group:rw all:r',
        cleanup: '400 404 499 500-505',
        proxyReadTimeout: '2m',
        clientHeaderTimeout: '10s',
        clientBodyTimeout: 20_000,
        sendTimeout: '30s',
        locations: [
          { path: '/a', match: 'exact', uploadPass: 'http://b:1/done' },
          {
            path: '/b',
            uploadPass: 'https://b',
            setFormFields: [
              { name: '$upload_field_name.name', value: '$upload_file_name' },
              { name: 'path', value: '$upload_tmp_path' },
            ],
            aggregateFormFields: [{ name: 'md5', value: '$upload_file_md5' }],
            addHeaders: [{ name: 'X-Up', value: '$upload_file_name' }],
            passFormFields: ['^submit$'],
            cleanup: [500, '502-504'],
            bufferSize: '8k',
            maxPartHeaderLen: 1024,
            maxFileSize: '1g',
            maxOutputBodyLen: 0,
            limitRate: '20k',
            tameArrays: true,
            passArgs: true,
            emptyFieldNames: true,
            mergeBufferSize: 4096,
            rangeHeaderBufferSize: '512',
            clientMaxBodySize: 0,
            fsync: false,
            sessionTimeout: '1h',
            completedRetention: 5000,
            sessionIdMaxLength: 64,
            proxyConnectTimeout: 1500,
            proxyReadTimeout: '10s',
            storeAccess: 0o640,
            resumable: false,
            clientBodyTimeout: '5s',
            sendTimeout: 4000,
          },
        ],
      },
      BASE,
    );
    const fromFile = parseConfig(
      [
        'listen 127.0.0.1:9000;',
        'client_max_body_size 100m;',
        'upload_resumable on;',
        'upload_store uploads 1 2;',
        'upload_state_store /var/state;',
        'upload_store_access user:rw group:rw all:r;',
        'upload_cleanup 400 404 499 500-505;',
        'proxy_read_timeout 2m;',
        'client_header_timeout 10s;',
        'client_body_timeout 20s;',
        'send_timeout 30s;',
        'location = /a { upload_pass http://b:1/done; }',
        'location /b {',
        '  upload_pass https://b;',
        '  upload_set_form_field $upload_field_name.name $upload_file_name;',
        '  upload_set_form_field path $upload_tmp_path;',
        '  upload_aggregate_form_field md5 $upload_file_md5;',
        '  upload_add_header X-Up $upload_file_name;',
        '  upload_pass_form_field ^submit$;',
        '  upload_cleanup 500 502-504;',
        '  upload_buffer_size 8k;',
        '  upload_max_part_header_len 1k;',
        '  upload_max_file_size 1g;',
        '  upload_max_output_body_len 0;',
        '  upload_limit_rate 20k;',
        '  upload_tame_arrays on;',
        '  upload_pass_args on;',
        '  upload_empty_field_names on;',
        '  upload_merge_buffer_size 4k;',
        '  upload_range_header_buffer_size 512;',
        '  client_max_body_size 0;',
        '  upload_fsync off;',
        '  upload_session_timeout 1h;',
        '  upload_completed_retention 5s;',
        '  upload_session_id_max_length 64;',
        '  proxy_connect_timeout 1500ms;',
        '  proxy_read_timeout 10s;',
        '  upload_store_access user:rw group:r;',
        '  upload_resumable off;',
        '  client_body_timeout 5s;',
        '  send_timeout 4s;',
        '}',
      ].join('\n'),
      `${BASE}/gateway.conf`,
    );
    expect(comparable(fromObject)).toEqual(comparable(fromFile));
    // And the values are what the directives mean, not just equal to each other.
    const [a, b] = fromObject.locations;
    expect(a).toMatchObject({ match: 'exact', resumable: true, store: { dir: `${BASE}/uploads`, levels: [1, 2] }, storeAccess: 0o664 });
    expect(a.uploadPass).toEqual({ source: 'http://b:1/done', origin: 'http://b:1', hostHeader: 'b:1', path: '/done' });
    expect(b).toMatchObject({
      resumable: false,
      cleanup: [
        [500, 500],
        [502, 504],
      ],
      maxFileSize: 1024 ** 3,
      completedRetentionMs: 5000,
      backendReadTimeoutMs: 10_000,
      clientMaxBodySize: 0,
    });
    expect(fromObject.clientMaxBodySize).toBe(100 * 1024 * 1024);
    expect(fromObject).toMatchObject({ clientHeaderTimeoutMs: 10_000, sendTimeoutMs: 30_000 });
    expect(a).toMatchObject({ clientBodyTimeoutMs: 20_000, sendTimeoutMs: 30_000 });
    expect(b).toMatchObject({ clientBodyTimeoutMs: 5000, sendTimeoutMs: 4000 });
  });

  test('listen forms', () => {
    const listen = (value: GatewayConfigInput['listen']) => resolveConfig({ listen: value }, BASE).listen;
    expect(listen('localhost:81')).toEqual({ host: 'localhost', port: 81 });
    expect(listen(8081)).toEqual({ host: '0.0.0.0', port: 8081 });
    expect(listen({ host: '::1', port: 82 })).toEqual({ host: '::1', port: 82 });
    expect(listen({ host: '127.0.0.1', port: 0 })).toEqual({ host: '127.0.0.1', port: 0 });
    expect(resolveError({ listen: { host: 'x', port: 70000 } }).reason).toMatch(/^listen: invalid listen address/);
    expect(resolveError({ listen: true }).reason).toMatch(/^listen: expected/);
  });

  test('sampleBackend is resolved against the base directory', () => {
    expect(resolveConfig({ sampleBackend: { filesDir: 'files' } }, BASE).sampleBackend).toEqual({ filesDir: `${BASE}/files` });
    expect(resolveConfig({ sampleBackend: null }, BASE).sampleBackend).toBeNull();
  });

  test('inheritance works as in files: lists inherited whole, only when a location has none', () => {
    const config = resolveConfig(
      {
        passFormFields: ['^a$', '^b$'],
        maxFileSize: 10,
        locations: [
          { path: '/x', uploadPass: 'http://b:1' },
          { path: '/y', uploadPass: 'http://b:1', passFormFields: ['^c$'], maxFileSize: '1k' },
          { path: '/z', uploadPass: 'http://b:1', passFormFields: [] },
        ],
      },
      BASE,
    );
    expect(config.locations.map((l) => [l.passFormFields, l.maxFileSize])).toEqual([
      [['^a$', '^b$'], 10],
      [['^c$'], 1024],
      [['^a$', '^b$'], 10],
    ]);
  });

  describe('errors name the key and the reason', () => {
    test.each([
      [{ locations: [{ uploadPass: 'http://b:1' }] }, /^locations\[0\]\.path: expected the location path/],
      [{ locations: [{ path: '/x' }] }, /^locations\[0\]\.uploadPass: expected an absolute/],
      [{ locations: [{ path: '/x', uploadPass: 'http://b:1', maxFileSise: 1 }] }, /^locations\[0\]: Unrecognized key: "maxFileSise"/],
      [{ resumable: 'on' }, /^resumable: expected true or false/],
      [{ maxFileSize: -1 }, /^maxFileSize: expected a size/],
      [{ maxFileSize: 1.5 }, /^maxFileSize: expected a size/],
      [{ maxFileSize: '1x' }, /^maxFileSize: invalid size "1x"/],
      [{ sessionTimeout: '5 minutes' }, /^sessionTimeout: invalid time "5 minutes"/],
      [{ proxyReadTimeout: 0 }, /^proxyReadTimeout: "proxy_read_timeout" must be at least/],
      [{ locations: [{ path: '/x', uploadPass: 'http://b:1', clientHeaderTimeout: '5s' }] }, /^locations\[0\]: Unrecognized key: "clientHeaderTimeout"/],
      [{ clientBodyTimeout: 0 }, /^clientBodyTimeout: "client_body_timeout" must be at least/],
      [{ cleanup: [600] }, /^cleanup: value\(s\) "600" .* must be between 200 and 599/],
      [{ cleanup: ['50-60'] }, /^cleanup: invalid code "50-60"/],
      [{ store: { dir: '/s', levels: [3] } }, /^store: invalid level "3"/],
      [{ store: '/s/$host' }, /^store: variables in upload_store are not supported/],
      [{ storeAccess: 0o1777 }, /^storeAccess: "upload_store_access" must be a file mode/],
      [{ storeAccess: 'user:x' }, /^storeAccess: invalid value "user:x"/],
      [{ passFormFields: ['('] }, /^passFormFields: invalid regular expression/],
      [{ setFormFields: [{ name: 'md5', value: '$upload_file_md5' }] }, /^setFormFields: variable "\$upload_file_md5" can be used only in upload_aggregate_form_field/],
      [{ addHeaders: [{ name: 'X', value: '$nope' }] }, /^addHeaders: unknown "nope" variable/],
      [{ sessionIdMaxLength: 241 }, /^sessionIdMaxLength: .* from 1 to 240/],
      [{ mergeBufferSize: 64 }, /^mergeBufferSize: "upload_merge_buffer_size" must be at least 128/],
      [{ locations: [{ path: '/x', uploadPass: '@backend' }] }, /^locations\[0\]\.uploadPass: must be an absolute http/],
      [{ locations: [{ path: '/x', uploadPass: '/internal' }] }, /^locations\[0\]\.uploadPass: must be an absolute http/],
      [{ locations: [{ path: '/x', uploadPass: 'http://b:1/$uri' }] }, /^locations\[0\]\.uploadPass: variables in upload_pass/],
      [{ locations: [{ path: '/x', uploadPass: 'http://b:1?q' }] }, /^locations\[0\]\.uploadPass: a query/],
      [{ locations: [{ path: 'x', uploadPass: 'http://b:1' }] }, /^locations\[0\]: location path "x" must start with "\/"/],
      [{ locations: [{ path: '/x', match: 'regex', uploadPass: 'http://b:1' }] }, /^locations\[0\]\.match: expected "exact" or "prefix"/],
      [{ locations: [{ path: '/x', uploadPass: 'http://b:1', maxFileSize: '2x' }] }, /^locations\[0\]\.maxFileSize: invalid size/],
      [
        { locations: [{ path: '/x', uploadPass: 'http://b:1' }, { path: '/x', uploadPass: 'http://c:1' }] },
        /^locations\[1\]: duplicate location "\/x"/,
      ],
      [{ unknownKey: 1 }, /Unrecognized key: "unknownKey"/],
    ])('%j', (input, reason) => {
      expect(resolveError(input).reason).toMatch(reason);
    });

    test('a non-object input', () => {
      expect(resolveError(null).reason).toMatch(/expected object/i);
    });
  });

  test('the base directory defaults to the working directory', () => {
    const config = resolveConfig({ locations: [{ path: '/x', uploadPass: 'http://b:1', store: 'st' }] });
    expect(config.locations[0].store.dir).toBe(`${process.cwd()}/st`);
  });
});
