/** `upload_state_redis` (gateway extension): session state and locks in Redis, shared by several instances. */
import { resolveConfig } from '../../src/config/resolve';
import { ConfigError } from '../../src/config/errors';
import { expectParseError, parse, parseLocation, uploadLocation } from './helpers';

test('off by default: the embedded file state serves', () => {
  expect(parseLocation('').stateRedis).toBeNull();
});

test('a redis:// or rediss:// URL, with a database, a password, or neither', () => {
  for (const url of ['redis://redis:6379/0', 'redis://127.0.0.1', 'redis://:secret@cache.internal:6380/3', 'rediss://user:pw@r.example:6379/1']) {
    expect(parseLocation(`upload_state_redis ${url};`).stateRedis).toBe(url);
  }
});

test('at the top level it is the default of every location; a location may turn it off', () => {
  const config = parse(
    [
      'upload_state_redis redis://redis:6379/0;',
      'location /a {',
      '  upload_pass http://b:1;',
      '}',
      'location /b {',
      '  upload_pass http://b:1;',
      '  upload_state_redis off;',
      '}',
      'location /c {',
      '  upload_pass http://b:1;',
      '  upload_state_redis redis://other:6379/2;',
      '}',
    ].join('\n'),
  );
  expect(config.locations.map((l) => l.stateRedis)).toEqual(['redis://redis:6379/0', null, 'redis://other:6379/2']);
});

test('anything but a Redis URL is refused at start-up with the line (D20)', () => {
  expectParseError(uploadLocation('upload_state_redis http://redis:6379;'), 3, /the scheme must be redis:\/\/ or rediss:\/\//);
  expectParseError(uploadLocation('upload_state_redis redis://redis:6379/zero;'), 3, /the path must be a database number/);
  expectParseError(uploadLocation('upload_state_redis redis;'), 3, /invalid Redis URL/);
  expectParseError(uploadLocation('upload_state_redis redis://r:1/0 x;'), 3, 'invalid number of arguments in "upload_state_redis" directive');
  expectParseError(uploadLocation('upload_state_redis redis://a:1;\n  upload_state_redis redis://b:1;'), 4, '"upload_state_redis" directive is duplicate');
});

test('programmatic configuration: stateRedis', () => {
  const config = resolveConfig({ stateRedis: 'redis://redis:6379/0', locations: [{ path: '/u', uploadPass: 'http://b:1' }, { path: '/v', uploadPass: 'http://b:1', stateRedis: null }] });
  expect(config.locations.map((l) => l.stateRedis)).toEqual(['redis://redis:6379/0', null]);
  expect(() => resolveConfig({ stateRedis: 'memcached://x' })).toThrow(ConfigError);
});
