/**
 * The operations directives: `upload_metrics`, `allow`/`deny`, `auth_request` (+ `_cache`),
 * `access_log`, `error_log`, `worker_shutdown_timeout` and the `cors_*` directives. Valid forms,
 * defaults, inheritance (nginx's: a list is inherited whole, only by a level without one), where
 * each may stand, the same values from a configuration object, and refused forms with their line.
 */
import { resolveConfig } from '../../src/config/resolve';
import { configErrorOf, expectParseError, parse, parseLocation, uploadLocation } from './helpers';

describe('allow / deny', () => {
  test('one ordered list of both, IPv4 and IPv6, addresses, blocks and all', () => {
    const location = parseLocation('allow 127.0.0.1;\n deny 10.1.0.0/16;\n allow ::1;\n allow 2001:db8::/32;\n deny all;');
    expect(location.access).toEqual([
      { allow: true, source: '127.0.0.1', family: 'ipv4', address: '127.0.0.1', prefix: 32 },
      { allow: false, source: '10.1.0.0/16', family: 'ipv4', address: '10.1.0.0', prefix: 16 },
      { allow: true, source: '::1', family: 'ipv6', address: '::1', prefix: 128 },
      { allow: true, source: '2001:db8::/32', family: 'ipv6', address: '2001:db8::', prefix: 32 },
      { allow: false, source: 'all', family: 'all', address: '', prefix: 0 },
    ]);
  });

  test('inherited as a whole, only by a level without rules (as nginx)', () => {
    const config = parse(`allow 10.0.0.0/8;\ndeny all;\n${uploadLocation('')}${uploadLocation('allow 192.168.0.0/16;', '/other')}`);
    expect(config.access.map((r) => r.source)).toEqual(['10.0.0.0/8', 'all']);
    expect(config.locations[0].access.map((r) => r.source)).toEqual(['10.0.0.0/8', 'all']);
    expect(config.locations[1].access.map((r) => r.source)).toEqual(['192.168.0.0/16']);
  });

  test.each([
    ['allow 10.0.0.300;', 'expected an IPv4 or IPv6 address'],
    ['allow 10.0.0.0/33;', 'the prefix length must be 0 to 32'],
    ['deny ::1/129;', 'the prefix length must be 0 to 128'],
    ['deny unix:;', 'unix sockets are not supported'],
    ['allow localhost;', 'expected an IPv4 or IPv6 address'],
    ['allow 1.2.3.4 5.6.7.8;', 'invalid number of arguments in "allow" directive'],
  ])('%s is refused', (line, reason) => {
    expectParseError(uploadLocation(line), 3, reason);
  });

  test('refused in a proxy location (it is never served)', () => {
    expectParseError('location /up {\n upload_pass /auth;\n}\nlocation /auth {\n proxy_pass http://a:1;\n allow all;\n}', 6, '"allow" has no effect in a location without "upload_pass"');
  });
});

describe('upload_metrics', () => {
  test('makes a metrics location, with allow/deny, access_log and auth_request', () => {
    const config = parse('location = /metrics {\n upload_metrics;\n allow 127.0.0.1;\n deny all;\n access_log off;\n}\n');
    expect(config.metricsLocations).toHaveLength(1);
    const [metrics] = config.metricsLocations;
    expect({ match: metrics.match, path: metrics.path, origin: metrics.origin }).toEqual({ match: 'exact', path: '/metrics', origin: '/srv/gateway/gateway.conf:1' });
    expect(metrics.access.map((r) => `${r.allow ? 'allow' : 'deny'} ${r.source}`)).toEqual(['allow 127.0.0.1', 'deny all']);
    expect(metrics.accessLog).toBeNull();
  });

  test.each([
    ['location /m {\n upload_metrics;\n upload_pass http://b:1;\n}', 2, '"upload_metrics" and "upload_pass" cannot be used in the same location'],
    ['location /m {\n upload_metrics;\n upload_store /x;\n}', 3, '"upload_store" has no effect in a location with "upload_metrics"'],
    ['location /m {\n upload_metrics;\n upload_metrics;\n}', 3, '"upload_metrics" directive is duplicate'],
    ['location /m {\n upload_metrics x;\n}', 2, 'invalid number of arguments in "upload_metrics" directive'],
    ['upload_metrics;', 1, '"upload_metrics" directive is not allowed here'],
    ['location /m {\n upload_metrics;\n internal;\n}', 3, '"internal" is not supported in a metrics location'],
  ])('refused: %j', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('auth_request', () => {
  test('/uri resolves through the location with proxy_pass, with its timeouts', () => {
    const config = parse(`auth_request /auth;\n${uploadLocation('')}location = /auth {\n internal;\n proxy_pass http://auth:9000/check;\n proxy_read_timeout 5s;\n}\n`);
    expect(config.locations[0].authRequest).toEqual({
      source: '/auth', origin: 'http://auth:9000', hostHeader: 'auth:9000', path: '/check', connectTimeoutMs: 60_000, readTimeoutMs: 5000,
    });
  });

  test('a URL is used as is; off turns an inherited one off; the default is off', () => {
    const config = parse(`auth_request http://a:1/ok;\n${uploadLocation('')}${uploadLocation('auth_request off;', '/free')}`);
    expect(config.locations[0].authRequest).toMatchObject({ origin: 'http://a:1', path: '/ok' });
    expect(config.locations[1].authRequest).toBeNull();
    expect(parseLocation('').authRequest).toBeNull();
  });

  test('auth_request_cache: a time and optional header names; off, 0 and the default are none', () => {
    expect(parseLocation('auth_request_cache 30s;').authRequestCache).toEqual({ timeMs: 30_000, headers: [] });
    expect(parseLocation('auth_request_cache 1m Authorization X-Api-Key;').authRequestCache).toEqual({ timeMs: 60_000, headers: ['authorization', 'x-api-key'] });
    expect(parseLocation('auth_request_cache off;').authRequestCache).toBeNull();
    expect(parseLocation('auth_request_cache 0;').authRequestCache).toBeNull();
    expect(parseLocation('').authRequestCache).toBeNull();
  });

  test.each([
    [uploadLocation('auth_request /nowhere;'), 3, 'auth_request "/nowhere": no location with "proxy_pass" matches it'],
    [uploadLocation('auth_request @auth;'), 3, 'named locations are not supported'],
    [uploadLocation('auth_request auth;'), 3, 'expected /uri (a location with proxy_pass) or an http:// URL'],
    [uploadLocation('auth_request /a$uri;'), 3, 'variables in auth_request are not supported'],
    [uploadLocation('auth_request_cache 5x;'), 3, 'invalid time'],
    [uploadLocation('auth_request_cache 5s Bad:Header;'), 3, 'invalid header name "Bad:Header"'],
    [uploadLocation('auth_request_cache off Authorization;'), 3, 'takes no header names'],
  ])('refused: %j', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('access_log, error_log, worker_shutdown_timeout', () => {
  test('access_log: a file relative to the configuration, off, inherited; default off', () => {
    const config = parse(`access_log logs/access.log;\n${uploadLocation('')}location = /m {\n upload_metrics;\n access_log off;\n}\n`);
    expect(config.accessLog).toBe('/srv/gateway/logs/access.log');
    expect(config.locations[0].accessLog).toBe('/srv/gateway/logs/access.log');
    expect(config.metricsLocations[0].accessLog).toBeNull();
    expect(parse('').accessLog).toBeNull();
  });

  test('error_log: a file or stderr, nginx levels (default error); absent: null', () => {
    expect(parse('error_log /var/log/gw.log;').errorLog).toEqual({ file: '/var/log/gw.log', level: 'error' });
    expect(parse('error_log stderr notice;').errorLog).toEqual({ file: 'stderr', level: 'info' });
    expect(parse('error_log x.log crit;').errorLog).toEqual({ file: '/srv/gateway/x.log', level: 'fatal' });
    expect(parse('').errorLog).toBeNull();
  });

  test('worker_shutdown_timeout: default 30s', () => {
    expect(parse('').shutdownTimeoutMs).toBe(30_000);
    expect(parse('worker_shutdown_timeout 5s;').shutdownTimeoutMs).toBe(5000);
  });

  test.each([
    ['error_log x.log loud;', 1, 'invalid log level "loud"'],
    ['error_log syslog:server=a;', 1, 'syslog in error_log is not supported'],
    [uploadLocation('error_log x.log;'), 3, '"error_log" directive is not allowed here'],
    [uploadLocation('worker_shutdown_timeout 5s;'), 3, '"worker_shutdown_timeout" directive is not allowed here'],
    ['access_log a.log combined;', 1, 'invalid number of arguments in "access_log" directive'],
    ['access_log a.log;\naccess_log b.log;', 2, '"access_log" directive is duplicate'],
  ])('refused: %j', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('cors_*', () => {
  test('origins, extra headers, credentials and max age; inherited; defaults', () => {
    const location = parseLocation('cors_allow_origin https://app.example.com http://Localhost:3000;\n cors_allow_headers Authorization;\n cors_expose_headers X-File-Url;\n cors_allow_credentials on;\n cors_max_age 1h;');
    expect(location).toMatchObject({
      corsAllowOrigins: ['https://app.example.com', 'http://localhost:3000'],
      corsAllowHeaders: ['Authorization'],
      corsExposeHeaders: ['X-File-Url'],
      corsAllowCredentials: true,
      corsMaxAgeMs: 3_600_000,
    });
    expect(parseLocation('')).toMatchObject({ corsAllowOrigins: [], corsAllowHeaders: [], corsExposeHeaders: [], corsAllowCredentials: false, corsMaxAgeMs: 600_000 });
    expect(parse(`cors_allow_origin *;\n${uploadLocation('')}`).locations[0].corsAllowOrigins).toEqual(['*']);
  });

  test.each([
    [uploadLocation('cors_allow_origin https://a.example/path;'), 3, 'invalid origin'],
    [uploadLocation('cors_allow_origin null;'), 3, 'invalid origin'],
    [uploadLocation('cors_allow_headers "X Y";'), 3, 'invalid header name'],
    [`cors_allow_origin *;\n${uploadLocation('cors_allow_credentials on;')}`, 4, '"cors_allow_credentials on" needs the allowed origins named'],
  ])('refused: %j', (text, line, reason) => {
    expectParseError(text, line, reason);
  });
});

describe('the same from a configuration object', () => {
  test('every operations setting, in locations, progress and metrics locations', () => {
    const config = resolveConfig({
      access: ['allow 127.0.0.1', 'deny all'],
      accessLog: '/tmp/a.log',
      errorLog: { file: 'stderr', level: 'warn' },
      workerShutdownTimeout: '3s',
      locations: [{ path: '/up', uploadPass: 'http://b:1', authRequest: 'http://auth:2/check', authRequestCache: { time: '10s', headers: ['Cookie'] }, corsAllowOrigins: ['*'] }],
      progressZones: { z: '1m' },
      progressLocations: [{ path: '/progress', reportUploads: 'z', access: ['allow ::1'] }],
      metricsLocations: [{ path: '/metrics', match: 'exact', access: ['allow 10.0.0.0/8', 'deny all'], accessLog: null }],
    });
    expect(config.access.map((r) => r.source)).toEqual(['127.0.0.1', 'all']);
    expect(config.errorLog).toEqual({ file: 'stderr', level: 'warn' });
    expect(config.shutdownTimeoutMs).toBe(3000);
    expect(config.locations[0]).toMatchObject({ accessLog: '/tmp/a.log', authRequestCache: { timeMs: 10_000, headers: ['cookie'] }, corsAllowOrigins: ['*'] });
    expect(config.locations[0].authRequest).toMatchObject({ origin: 'http://auth:2', path: '/check' });
    expect(config.progressLocations[0].access.map((r) => r.source)).toEqual(['::1']);
    expect(config.metricsLocations[0]).toMatchObject({ match: 'exact', path: '/metrics', accessLog: null });
    expect(config.metricsLocations[0].access.map((r) => r.source)).toEqual(['10.0.0.0/8', 'all']);
  });

  test('refusals name the key', () => {
    expect(configErrorOf(() => resolveConfig({ access: ['permit all'] })).message).toContain('access: invalid access rule "permit all"');
    expect(configErrorOf(() => resolveConfig({ metricsLocations: [{ path: '/m', stateRedis: null } as never] })).message).toContain('metricsLocations[0]');
  });
});
