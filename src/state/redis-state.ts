/**
 * Session state and locks in Redis, shared by several gateway instances (`upload_state_redis`).
 *
 * Keys (prefix `upload-gateway:` by default; one standalone Redis, not a cluster):
 *   s:<id>        the session record (JSON)
 *   ids           set of every stored session id (for the expiry sweep)
 *   l:<key>       the lock of a session: a random token, with an expiry (the lease)
 *   rs:<key>      set of the tokens of a session's reservations (segments in flight)
 *   rv:<token>    one reservation: `start-end`, with an expiry (the lease)
 *
 * Every write of a record is one Lua script: it first checks that each lease it is made on behalf
 * of still holds its key with its value (fencing: an instance that lost its lease writes nothing),
 * then, for `update`, that the record is still the one `decide` saw (optimistic concurrency, like
 * WATCH/MULTI/EXEC but safe on one multiplexed connection), and only then writes. Leases are renewed
 * while held; an instance that dies stops renewing, and its locks and reservations expire.
 */
import { createHash, randomBytes } from 'node:crypto';
import Redis, { type RedisOptions } from 'ioredis';
import type { ByteRange } from '../protocol/range-set';
import { MemoryLocker } from './memory-locker';
import {
  checkGuards,
  LeaseLostError,
  StateUnavailableError,
  type Change,
  type Lease,
  type Locker,
  type SessionRecord,
  type SessionStore,
} from './types';

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

/** A Lua script run with EVALSHA (EVAL once when Redis does not know it yet). */
class Script {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Redis failures become `StateUnavailableError` (answered 503 + Retry-After). */
async function redisCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StateUnavailableError) throw err;
    throw new StateUnavailableError(`the session state (Redis) is unavailable: ${what}: ${(err as Error).message}`);
  }
}

// KEYS: record, ids, fence keys…; ARGV: op (put|del), compare (1|0), expected ('' = absent), json, id, fence values…
const WRITE = new Script(`
local nf = #KEYS - 2
for i = 1, nf do
  if redis.call('GET', KEYS[2 + i]) ~= ARGV[5 + i] then return 'FENCED' end
end
if ARGV[2] == '1' then
  local cur = redis.call('GET', KEYS[1])
  if ARGV[3] == '' then
    if cur then return 'CONFLICT' end
  elseif cur ~= ARGV[3] then
    return 'CONFLICT'
  end
end
if ARGV[1] == 'put' then
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[5])
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[5])
end
return 'OK'
`);

/** Session records in Redis; see the module comment. Does not own the client. */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix = DEFAULT_REDIS_PREFIX,
  ) {}

  private key(id: string): string {
    return `${this.prefix}s:${id}`;
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const text = await redisCall('get', () => this.client.get(this.key(id)));
    return text === null ? undefined : (JSON.parse(text) as SessionRecord);
  }

  private async write(op: 'put' | 'del', id: string, json: string, expected: string | null | undefined, guards: readonly Lease[] | undefined): Promise<'OK' | 'CONFLICT'> {
    checkGuards(guards);
    const fences = (guards ?? []).flatMap((g) => (g.fence ? [g.fence] : []));
    const keys = [this.key(id), `${this.prefix}ids`, ...fences.map((f) => f.key)];
    const args = [op, expected === undefined ? '0' : '1', expected ?? '', json, id, ...fences.map((f) => f.value)];
    const answer = await redisCall(op, () => WRITE.run(this.client, keys, args));
    if (answer === 'FENCED') throw new LeaseLostError();
    if (answer !== 'OK' && answer !== 'CONFLICT') throw new StateUnavailableError(`unexpected answer from Redis: ${String(answer)}`);
    return answer;
  }

  async put(record: SessionRecord, guards?: readonly Lease[]): Promise<void> {
    await this.write('put', record.id, JSON.stringify(record), undefined, guards);
  }

  async delete(id: string, guards?: readonly Lease[]): Promise<void> {
    await this.write('del', id, '', undefined, guards);
  }

  async update<T>(id: string, decide: (current: SessionRecord | undefined) => Change<T>, guards?: readonly Lease[]): Promise<T> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const text = await redisCall('get', () => this.client.get(this.key(id)));
      const change = decide(text === null ? undefined : (JSON.parse(text) as SessionRecord));
      if (!change.record) return change.result;
      if (change.record.id !== id) throw new Error(`update of ${id} returned a record of ${change.record.id}`);
      if ((await this.write('put', id, JSON.stringify(change.record), text, guards)) === 'OK') return change.result;
      // Another writer got in between: decide again on what it wrote.
      await sleep(Math.random() * Math.min(50, 2 ** attempt));
    }
    throw new StateUnavailableError(`session ${id}: too many concurrent updates`);
  }

  async *ids(): AsyncIterable<string> {
    let cursor = '0';
    do {
      const [next, batch] = await redisCall('sscan', () => this.client.sscan(`${this.prefix}ids`, cursor, 'COUNT', 500));
      cursor = next;
      yield* batch;
    } while (cursor !== '0');
  }

  async close(): Promise<void> {}
}

// KEYS[1] the lease's key, KEYS[2] (optional) an index set to keep alive; ARGV: value, ttl ms
const RENEW = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] and redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
`);

// KEYS[1] the lease's key, KEYS[2] (optional) an index set; ARGV: value, member of the index
const RELEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if KEYS[2] then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
`);

// KEYS[1] index set of the session's reservations, KEYS[2] the new reservation's key;
// ARGV: start, end, ttl ms, key prefix of reservations, token
const RESERVE = new Script(`
local s, e = tonumber(ARGV[1]), tonumber(ARGV[2])
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[4] .. member)
  if not v then
    redis.call('SREM', KEYS[1], member)
  else
    local dash = string.find(v, '-', 1, true)
    local a, b = tonumber(string.sub(v, 1, dash - 1)), tonumber(string.sub(v, dash + 1))
    if a <= e and s <= b then return 0 end
  end
end
redis.call('SET', KEYS[2], ARGV[1] .. '-' .. ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[1], ARGV[5])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`);

export interface RedisLockerOptions {
  prefix?: string;
  /** Lifetime of a lock that is not renewed (an instance died holding it). Default 10 s. */
  lockTtlMs?: number;
  /** Lifetime of a reservation that is not renewed. Default 6 s. */
  reserveTtlMs?: number;
  /** Longest wait for a lock before the request gets a 503. Default 30 s. */
  acquireTimeoutMs?: number;
}

/** A lease on one Redis key: renewed every ttl/3 while held; lost when renewal finds the key gone or another value. */
class RedisLease implements Lease {
  private state: 'held' | 'released' | 'lost' = 'held';
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private lastRenewed = Date.now();

  constructor(
    private readonly client: Redis,
    readonly fence: { key: string; value: string },
    private readonly ttlMs: number,
    /** The reservation index (key, member) that renewal keeps alive and release cleans. */
    private readonly index: { key: string; member: string } | null,
    private readonly onRelease: () => void,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(10, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  get held(): boolean {
    return this.state === 'held';
  }

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  private async renew(): Promise<void> {
    if (this.state !== 'held') return;
    const keys = this.index ? [this.fence.key, this.index.key] : [this.fence.key];
    try {
      const ok = await RENEW.run(this.client, keys, [this.fence.value, this.ttlMs]);
      if (ok === 1) this.lastRenewed = Date.now();
      else this.lose();
    } catch {
      // Redis unreachable: the key expires on its own; past that point the lease is gone.
      if (Date.now() - this.lastRenewed >= this.ttlMs) this.lose();
    }
  }

  private lose(): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    clearInterval(this.timer);
    this.controller.abort(new LeaseLostError());
    this.onRelease();
  }

  async release(): Promise<void> {
    if (this.state !== 'held') return;
    this.state = 'released';
    clearInterval(this.timer);
    try {
      const keys = this.index ? [this.fence.key, this.index.key] : [this.fence.key];
      await RELEASE.run(this.client, keys, [this.fence.value, this.index?.member ?? '']);
    } catch {
      // Unreachable Redis: the lease expires by itself.
    } finally {
      this.onRelease();
    }
  }
}

/**
 * Locks and reservations in Redis. Requests of this process wait for a lock in order (an
 * in-process queue per key) and only the first of them polls Redis, so the order within one
 * instance is kept and Redis sees one contender per instance. Does not own the client.
 */
export class RedisLocker implements Locker {
  private readonly local = new MemoryLocker();
  private readonly prefix: string;
  private readonly lockTtlMs: number;
  private readonly reserveTtlMs: number;
  private readonly acquireTimeoutMs: number;
  private readonly leases = new Set<Lease>();

  constructor(
    private readonly client: Redis,
    options: RedisLockerOptions = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.lockTtlMs = options.lockTtlMs ?? 10_000;
    this.reserveTtlMs = options.reserveTtlMs ?? 6_000;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 30_000;
  }

  async lock(key: string): Promise<Lease> {
    const turn = await this.local.lock(key);
    try {
      const lockKey = `${this.prefix}l:${key}`;
      const token = randomBytes(16).toString('hex');
      const deadline = Date.now() + this.acquireTimeoutMs;
      for (let delay = 2; ; delay = Math.min(50, delay * 2)) {
        const ok = await redisCall('lock', () => this.client.set(lockKey, token, 'PX', this.lockTtlMs, 'NX'));
        if (ok === 'OK') break;
        if (Date.now() > deadline) throw new StateUnavailableError(`session ${key} is locked by another instance for more than ${this.acquireTimeoutMs} ms`);
        await sleep(delay * (0.5 + Math.random()));
      }
      const lease: Lease = new RedisLease(this.client, { key: lockKey, value: token }, this.lockTtlMs, null, () => {
        this.leases.delete(lease);
        void turn.release();
      });
      this.leases.add(lease);
      return lease;
    } catch (err) {
      await turn.release();
      throw err;
    }
  }

  async reserve(key: string, range: ByteRange): Promise<Lease | null> {
    const token = randomBytes(16).toString('hex');
    const index = `${this.prefix}rs:${key}`;
    const valuePrefix = `${this.prefix}rv:`;
    const ok = await redisCall('reserve', () =>
      RESERVE.run(this.client, [index, valuePrefix + token], [range.start, range.end, this.reserveTtlMs, valuePrefix, token]),
    );
    if (ok !== 1) return null;
    const lease: Lease = new RedisLease(this.client, { key: valuePrefix + token, value: `${range.start}-${range.end}` }, this.reserveTtlMs, { key: index, member: token }, () => {
      this.leases.delete(lease);
    });
    this.leases.add(lease);
    return lease;
  }

  /** Releases what this locker still holds (a clean shutdown frees its sessions at once). */
  async close(): Promise<void> {
    await Promise.all([...this.leases].map((lease) => lease.release()));
    await this.local.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
