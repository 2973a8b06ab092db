/**
 * upload_pass: an absolute URL, a named location, or a URI resolved through the file's
 * proxy_pass locations with nginx location matching and URI replacement.
 */
import { expectParseError, parse } from './helpers';

function passOf(text: string, locationPath = '/up') {
  const location = parse(text).locations.find((l) => l.path === locationPath);
  if (!location) throw new Error(`no upload location ${locationPath}`);
  return location.uploadPass;
}

describe('upload_pass URL', () => {
  test.each([
    ['http://backend:9000', 'http://backend:9000', 'backend:9000', null],
    ['http://backend:9000/', 'http://backend:9000', 'backend:9000', '/'],
    ['http://backend:9000/done', 'http://backend:9000', 'backend:9000', '/done'],
    ['http://backend:9000/a/b/', 'http://backend:9000', 'backend:9000', '/a/b/'],
    ['http://127.0.0.1:9090', 'http://127.0.0.1:9090', '127.0.0.1:9090', null],
    ['http://backend', 'http://backend', 'backend', null],
    ['http://backend:80/x', 'http://backend', 'backend', '/x'],
    ['https://secure.example', 'https://secure.example', 'secure.example', null],
    ['https://secure.example:443/', 'https://secure.example', 'secure.example', '/'],
    ['https://secure.example:8443/up', 'https://secure.example:8443', 'secure.example:8443', '/up'],
    ['http://[::1]:9000/x', 'http://[::1]:9000', '[::1]:9000', '/x'],
    ['HTTP://Backend.Example:8080', 'http://backend.example:8080', 'backend.example:8080', null],
  ])('%s', (url, origin, hostHeader, path) => {
    expect(passOf(`location /up {\n  upload_pass ${url};\n}`)).toEqual({ source: url, origin, hostHeader, path });
  });

  test.each([
    ['http://backend:9000/$uri', 'variables in upload_pass are not supported'],
    ['$backend', 'variables in upload_pass are not supported'],
    ['""', 'empty value in "upload_pass" directive'],
    ['backend:9000', 'invalid upload_pass "backend:9000"'],
    ['ftp://backend/', 'invalid upload_pass "ftp://backend/"'],
    ['http://', 'no host'],
    ['http:///x', 'no host'],
    ['http://user:pw@backend/', 'user info'],
    ['http://backend/done?x=1', 'a query or fragment'],
    ['http://backend/#f', 'a query or fragment'],
    ['http://backend:99999/', 'invalid URL'],
    ['"http://a b/"', 'invalid URL'],
  ])('%s is refused', (value, reason) => {
    expectParseError(`listen 80;\nlocation /up {\n  upload_pass ${value};\n}`, 3, reason);
  });

  test('takes exactly one argument', () => {
    expectParseError('location /up {\n  upload_pass;\n}', 2, 'invalid number of arguments in "upload_pass" directive');
    expectParseError('location /up {\n  upload_pass http://a http://b;\n}', 2, 'invalid number of arguments');
  });

  test('upload_pass and proxy_pass in one location', () => {
    expectParseError('location /up {\n  upload_pass http://a:1;\n  proxy_pass http://b:2;\n}', 3, 'cannot be used in the same location');
  });
});

describe('upload_pass @named', () => {
  test('takes the origin of the named location; the client request-target is forwarded (path null)', () => {
    const text = ['location /up {', '  upload_pass @backend;', '}', 'location @backend {', '  proxy_pass http://app:3000;', '}'].join('\n');
    expect(passOf(text)).toEqual({ source: '@backend', origin: 'http://app:3000', hostHeader: 'app:3000', path: null });
  });

  test('the named location may come first', () => {
    const text = 'location @b { proxy_pass https://app; }\nlocation /up { upload_pass @b; }';
    expect(passOf(text)).toMatchObject({ origin: 'https://app', hostHeader: 'app', path: null });
  });

  test('a missing named location is an error at the upload_pass line', () => {
    expectParseError('location @other { proxy_pass http://a:1; }\nlocation /up {\n  upload_pass @backend;\n}', 3, 'no named location "@backend"');
  });

  test('proxy_pass with a URI part in a named location is refused (as nginx does)', () => {
    expectParseError(
      'location /up { upload_pass @b; }\nlocation @b {\n  proxy_pass http://app:3000/x;\n}',
      3,
      '"proxy_pass" cannot have a URI part inside a named location',
    );
    // Even "/" is a URI part.
    expectParseError('location @b {\n  proxy_pass http://app:3000/;\n}', 2, 'cannot have a URI part');
  });

  test('a bad proxy_pass is an error at its line', () => {
    expectParseError('location @b {\n  proxy_pass app:3000;\n}', 2, 'invalid URL "app:3000" in "proxy_pass" directive');
    expectParseError('location @b {\n  proxy_pass http://$host;\n}', 2, 'variables in proxy_pass are not supported');
  });

  test('upload_pass inside a named location is refused', () => {
    expectParseError('location @b {\n  upload_pass http://a:1;\n}', 2, '"upload_pass" is not supported in a named location');
  });
});

describe('upload_pass /uri', () => {
  test('a proxy_pass without a URI part keeps the URI', () => {
    const text = 'location /up { upload_pass /internal; }\nlocation /internal { internal; proxy_pass http://app:3000; }';
    expect(passOf(text)).toEqual({ source: '/internal', origin: 'http://app:3000', hostHeader: 'app:3000', path: '/internal' });
  });

  test('a proxy_pass with a URI part replaces the matched prefix', () => {
    const text = 'location /up { upload_pass /internal/done; }\nlocation /internal { proxy_pass http://app:3000/app; }';
    expect(passOf(text).path).toBe('/app/done');
    const slash = 'location /up { upload_pass /internal/x; }\nlocation /internal/ { proxy_pass http://app:3000/; }';
    expect(passOf(slash).path).toBe('/x');
  });

  test('an exact match wins over a longer prefix', () => {
    const text = [
      'location /up { upload_pass /x/y; }',
      'location /x/y/ { proxy_pass http://longer:1; }',
      'location /x/ { proxy_pass http://prefix:1; }',
      'location = /x/y { proxy_pass http://exact:1/e; }',
    ].join('\n');
    expect(passOf(text)).toMatchObject({ origin: 'http://exact:1', path: '/e' });
  });

  test('otherwise the longest matching prefix wins, in any order', () => {
    const text = [
      'location /up { upload_pass /api/v1/upload; }',
      'location / { proxy_pass http://root:1; }',
      'location /api/v1/ { proxy_pass http://v1:1/v2/; }',
      'location /api/ { proxy_pass http://api:1; }',
    ].join('\n');
    expect(passOf(text)).toMatchObject({ origin: 'http://v1:1', hostHeader: 'v1:1', path: '/v2/upload' });
  });

  test('an exact location does not match a longer URI', () => {
    const text = 'location /up { upload_pass /b/c; }\nlocation = /b { proxy_pass http://exact:1; }\nlocation / { proxy_pass http://root:1; }';
    expect(passOf(text)).toMatchObject({ origin: 'http://root:1', path: '/b/c' });
  });

  test('only proxy_pass locations are candidates', () => {
    const text = [
      'location /up { upload_pass /up/done; }',
      'location /u { proxy_pass http://short:1; }',
    ].join('\n');
    expect(passOf(text)).toMatchObject({ origin: 'http://short:1', path: '/up/done' });
  });

  test('no matching location is an error at the upload_pass line', () => {
    expectParseError('location /b { proxy_pass http://b:1; }\nlocation /up {\n  upload_pass /internal;\n}', 3, 'no location with "proxy_pass" matches it');
    expectParseError('location = /internal/x { proxy_pass http://b:1; }\nlocation /up {\n  upload_pass /internal;\n}', 3, 'no location');
  });

  test('the target location sets the backend timeouts when it has them', () => {
    const text = [
      'proxy_read_timeout 30s;',
      'location /a { upload_pass @b; proxy_connect_timeout 2s; proxy_read_timeout 5s; }',
      'location /c { upload_pass /d; proxy_read_timeout 7s; }',
      'location @b { proxy_read_timeout 90s; proxy_pass http://b:1; }',
      'location /d { proxy_pass http://d:1; }',
    ].join('\n');
    const [a, c] = parse(text).locations;
    expect([a.backendConnectTimeoutMs, a.backendReadTimeoutMs]).toEqual([2000, 90_000]);
    expect([c.backendConnectTimeoutMs, c.backendReadTimeoutMs]).toEqual([60_000, 7000]);
  });

  test('proxy locations do not appear among the upload locations', () => {
    const config = parse('location /up { upload_pass /i; }\nlocation /i { proxy_pass http://b:1; }\nlocation @n { proxy_pass http://n:1; }');
    expect(config.locations.map((l) => l.path)).toEqual(['/up']);
  });
});
