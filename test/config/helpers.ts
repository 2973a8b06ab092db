import { ConfigError } from '../../src/config/errors';
import { parseConfig } from '../../src/config/parse';
import type { GatewayConfig, LocationConfig } from '../../src/config/types';

/** A fictional configuration file; parsing is pure, nothing is read from it. */
export const CONF_DIR = '/srv/gateway';
export const CONF_FILE = `${CONF_DIR}/gateway.conf`;

export function parse(text: string): GatewayConfig {
  return parseConfig(text, CONF_FILE);
}

/** The ConfigError thrown by `fn`; fails the test if it throws nothing or something else. */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw new Error(`expected a ConfigError, got ${String(err)}`);
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** Parsing `text` fails at `line` with a reason containing (or matching) `reason`. */
export function expectParseError(text: string, line: number, reason: string | RegExp): ConfigError {
  const err = configErrorOf(() => parse(text));
  expect({ file: err.file, line: err.line }).toEqual({ file: CONF_FILE, line });
  expect(err.message).toBe(`${CONF_FILE}:${line}: ${err.reason}`);
  if (typeof reason === 'string') expect(err.reason).toContain(reason);
  else expect(err.reason).toMatch(reason);
  return err;
}

/** One upload location `/up` passing to http://backend:9000, with `body` added. */
export function uploadLocation(body: string, path = '/up'): string {
  return `location ${path} {\n    upload_pass http://backend:9000;\n    ${body}\n}\n`;
}

/** Parses one upload location with `body` and returns it. */
export function parseLocation(body: string): LocationConfig {
  const config = parse(uploadLocation(body));
  expect(config.locations).toHaveLength(1);
  return config.locations[0];
}
