/**
 * The one way the gateway talks to Redis (session state and progress zones): a client that fails
 * fast while Redis is unreachable, Lua scripts registered with ioredis's `defineCommand` (EVALSHA,
 * with the EVAL fallback ioredis does), and Redis failures turned into `StateUnavailableError`
 * (answered 503 + Retry-After).
 */
import Redis, { type RedisOptions } from 'ioredis';
import { StateUnavailableError } from './errors';

export const DEFAULT_REDIS_PREFIX = 'upload-gateway:';

/** The URL without its password, for messages and logs. */
export function describeRedisUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return value;
  }
}

/**
 * A client for `upload_state_redis`: connects on first use, reconnects forever, and fails a command
 * (instead of queueing it for long) while Redis is unreachable, so requests get a quick 503.
 */
export function createRedisClient(url: string, onError: (err: Error) => void = () => undefined, options: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 10_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // How long a closed client waits for its socket to close (it keeps the process alive meanwhile).
    disconnectTimeout: 200,
    ...options,
  });
  client.on('error', onError);
  return client;
}

/** PING with a time limit: null when Redis answers, else the reason. */
export async function pingRedis(client: Redis, timeoutMs = 1000): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await Promise.race([
      client.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return answer === 'PONG' ? null : `unexpected PING answer ${String(answer)}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a Redis call; a failure becomes `StateUnavailableError` naming `what`. */
export async function redisCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StateUnavailableError) throw err;
    throw new StateUnavailableError(`${what}: Redis is unavailable: ${(err as Error).message}`);
  }
}

export type ScriptRunner = (keys: readonly string[], args: ReadonlyArray<string | number>) => Promise<unknown>;

/**
 * Registers `scripts` (name → Lua source) on `client` (`defineCommand`, once per client) and
 * returns runners that take the keys and arguments.
 */
export function defineScripts<N extends string>(client: Redis, namespace: string, scripts: Record<N, string>): Record<N, ScriptRunner> {
  const runners = {} as Record<N, ScriptRunner>;
  const commands = client as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
  for (const name of Object.keys(scripts) as N[]) {
    const command = `${namespace}_${name}`;
    if (typeof commands[command] !== 'function') client.defineCommand(command, { lua: scripts[name] });
    runners[name] = (keys, args) => commands[command].call(client, keys.length, ...keys, ...args);
  }
  return runners;
}
