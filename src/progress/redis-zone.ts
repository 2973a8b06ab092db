/**
 * The progress zone in Redis, shared by the gateway instances of one `upload_state_redis`: an
 * upload's bytes counted on one instance are seen by a probe on any other.
 *
 * One hash per id, `<prefix>p:<zone>:<id>`: `kind`, `session`, `size`, `ack` (JSON ranges) and
 * `ackb` (their byte count), `rcv`, `fin`, `st`, `created`, `updated`, a version `v` bumped by
 * every write, and `f:<request key>` = `start:received:at` per request in flight. Every operation
 * is one Lua script (atomic). The hash expires: `IN_FLIGHT_TTL_MS` after the last report while a
 * request is in flight (a dead instance's entry goes by itself), else the timeout given by `end`.
 * Writers report at most every ~100 ms (the tracker throttles), never per chunk.
 *
 * Watching: changes made through this zone notify at once; changes by other instances are seen
 * by one poll of `v` per watched id every 100 ms.
 */
import type Redis from 'ioredis';
import { coveredBytes, type ByteRange } from '../protocol/range-set';
import { defineScripts, redisCall, type ScriptRunner } from '../state/redis-client';
import {
  IN_FLIGHT_TTL_MS,
  STALE_IN_FLIGHT_MS,
  unionOf,
  type BeginResult,
  type EndOutcome,
  type ProgressEntry,
  type ProgressZone,
  type UploadIdentity,
} from './types';

// ARGV: kind, session, size, request key, now, in-flight ttl
const BEGIN = `
local e = KEYS[1]
if redis.call('EXISTS', e) == 1 then
  if ARGV[1] ~= 'session' or redis.call('HGET', e, 'kind') ~= 'session' or redis.call('HGET', e, 'session') ~= ARGV[2] then
    return 'duplicate'
  end
  if redis.call('HGET', e, 'size') ~= ARGV[3] then
    redis.call('HSET', e, 'size', ARGV[3], 'ack', '[]', 'ackb', '0')
  end
  redis.call('HSET', e, 'fin', '0', 'st', '0')
else
  redis.call('HSET', e, 'kind', ARGV[1], 'session', ARGV[2], 'size', ARGV[3], 'ack', '[]', 'ackb', '0',
    'rcv', '0', 'fin', '0', 'st', '0', 'created', ARGV[5])
end
redis.call('HSET', e, 'f:' .. ARGV[4], '0:0:' .. ARGV[5], 'updated', ARGV[5])
redis.call('HINCRBY', e, 'v', 1)
redis.call('PEXPIRE', e, ARGV[6])
return 'ok'
`;

// ARGV: request key, start:received:at, now, in-flight ttl
const REPORT = `
if redis.call('HEXISTS', KEYS[1], 'f:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'f:' .. ARGV[1], ARGV[2], 'updated', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'v', 1)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
`;

// ARGV: ranges JSON, their byte count, now
const ACKNOWLEDGE = `
if redis.call('HGET', KEYS[1], 'kind') ~= 'session' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'ackb') or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'ack', ARGV[1], 'ackb', ARGV[2], 'updated', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`;

// ARGV: request key, finish status ('' = none), final size ('' = unchanged), ttl, now, stale ms
const END = `
local e = KEYS[1]
if redis.call('EXISTS', e) == 0 then return 0 end
local mine = redis.call('HGET', e, 'f:' .. ARGV[1])
redis.call('HDEL', e, 'f:' .. ARGV[1])
if mine and redis.call('HGET', e, 'kind') == 'request' then
  local received = tonumber(string.match(mine, '^%d+:(%d+):'))
  if received and received > tonumber(redis.call('HGET', e, 'rcv') or '0') then redis.call('HSET', e, 'rcv', received) end
end
if ARGV[3] ~= '' then redis.call('HSET', e, 'size', ARGV[3]) end
if ARGV[2] ~= '' then
  local st = tonumber(ARGV[2])
  if st < 300 then st = 0 end
  redis.call('HSET', e, 'fin', '1', 'st', st)
end
redis.call('HSET', e, 'updated', ARGV[5])
redis.call('HINCRBY', e, 'v', 1)
local now, stale = tonumber(ARGV[5]), tonumber(ARGV[6])
local fields = redis.call('HGETALL', e)
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'f:' then
    local at = tonumber(string.match(fields[i + 1], ':(%d+)$'))
    if at and now - at < stale then return 1 end
  end
end
redis.call('PEXPIRE', e, ARGV[4])
return 1
`;

// ARGV: status, ttl, now
const RECORD_ERROR = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'kind', 'request', 'session', '', 'size', '0', 'ack', '[]', 'ackb', '0', 'rcv', '0',
  'fin', '1', 'st', ARGV[1], 'created', ARGV[3], 'updated', ARGV[3], 'v', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

const POLL_EVERY_MS = 100;

interface Watched {
  listeners: Set<() => void>;
  timer: NodeJS.Timeout;
  version: string | null;
  polling: boolean;
}

export class RedisProgressZone implements ProgressZone {
  private readonly watched = new Map<string, Watched>();
  private closed = false;

  private readonly run: Record<'BEGIN' | 'REPORT' | 'ACKNOWLEDGE' | 'END' | 'RECORD_ERROR', ScriptRunner>;

  constructor(
    private readonly client: Redis,
    readonly name: string,
    private readonly prefix: string,
  ) {
    this.run = defineScripts(client, 'ugProgress', { BEGIN, REPORT, ACKNOWLEDGE, END, RECORD_ERROR });
  }

  /** Runs a script; Redis failures become `StateUnavailableError` (a probe gets 503 + Retry-After). */
  private script(name: keyof RedisProgressZone['run'], keys: string[], args: Array<string | number>): Promise<unknown> {
    return redisCall(`the upload_progress zone (${name.toLowerCase()})`, () => this.run[name](keys, args));
  }

  private key(id: string): string {
    return `${this.prefix}p:${this.name}:${id}`;
  }

  private notify(id: string): void {
    const watched = this.watched.get(id);
    if (!watched) return;
    for (const listener of [...watched.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  async begin(id: string, upload: UploadIdentity, requestKey: string): Promise<BeginResult> {
    const session = upload.kind === 'session' ? upload.session : '';
    const size = upload.kind === 'session' ? upload.total : upload.size;
    const answer = await this.script('BEGIN', [this.key(id)], [upload.kind, session, size, requestKey, Date.now(), IN_FLIGHT_TTL_MS]);
    if (answer === 'ok') this.notify(id);
    return answer === 'ok' ? 'ok' : 'duplicate';
  }

  async report(id: string, requestKey: string, progress: { start: number; received: number }): Promise<void> {
    const now = Date.now();
    await this.script('REPORT', [this.key(id)], [requestKey, `${progress.start}:${progress.received}:${now}`, now, IN_FLIGHT_TTL_MS]);
    this.notify(id);
  }

  async acknowledge(id: string, ranges: readonly ByteRange[]): Promise<void> {
    const set = unionOf(ranges);
    const changed = await this.script('ACKNOWLEDGE', [this.key(id)], [JSON.stringify(set.map((r) => [r.start, r.end])), coveredBytes(set), Date.now()]);
    if (changed === 1) this.notify(id);
  }

  async end(id: string, requestKey: string, outcome: EndOutcome): Promise<void> {
    await this.script('END', [this.key(id)], [
      requestKey,
      outcome.finish === null ? '' : outcome.finish,
      outcome.size === undefined ? '' : outcome.size,
      Math.max(1, outcome.ttlMs),
      Date.now(),
      STALE_IN_FLIGHT_MS,
    ]);
    this.notify(id);
  }

  async recordError(id: string, status: number, ttlMs: number): Promise<void> {
    const created = await this.script('RECORD_ERROR', [this.key(id)], [status, Math.max(1, ttlMs), Date.now()]);
    if (created === 1) this.notify(id);
  }

  async get(id: string): Promise<ProgressEntry | undefined> {
    const hash = await redisCall('the upload_progress zone (read)', () => this.client.hgetall(this.key(id)));
    if (!hash.kind) return undefined;
    const inFlight: ProgressEntry['inFlight'] = {};
    for (const [field, value] of Object.entries(hash)) {
      if (!field.startsWith('f:')) continue;
      const [start, received, at] = value.split(':').map(Number);
      inFlight[field.slice(2)] = { start: start!, received: received!, at: at! };
    }
    const acknowledged = (JSON.parse(hash.ack || '[]') as Array<[number, number]>).map(([start, end]) => ({ start, end }));
    return {
      id,
      kind: hash.kind === 'session' ? 'session' : 'request',
      ...(hash.kind === 'session' ? { session: hash.session } : {}),
      size: Number(hash.size),
      acknowledged,
      inFlight,
      received: Number(hash.rcv ?? 0),
      finished: hash.fin === '1',
      status: Number(hash.st ?? 0),
      createdAt: Number(hash.created ?? 0),
      updatedAt: Number(hash.updated ?? 0),
    };
  }

  private async poll(id: string, watched: Watched): Promise<void> {
    if (watched.polling || this.closed) return;
    watched.polling = true;
    try {
      const version = await this.client.hget(this.key(id), 'v');
      if (version !== watched.version) {
        watched.version = version;
        if (this.watched.get(id) === watched) this.notify(id);
      }
    } catch {
      // Redis unreachable: the next poll tries again.
    } finally {
      watched.polling = false;
    }
  }

  watch(id: string, listener: () => void): () => void {
    let watched = this.watched.get(id);
    if (!watched) {
      const created: Watched = { listeners: new Set(), version: null, polling: false, timer: setInterval(() => void this.poll(id, created), POLL_EVERY_MS) };
      created.timer.unref();
      this.watched.set(id, created);
      watched = created;
      void this.poll(id, created);
    }
    const own = () => listener();
    watched.listeners.add(own);
    return () => {
      const current = this.watched.get(id);
      if (!current) return;
      current.listeners.delete(own);
      if (current.listeners.size === 0) {
        clearInterval(current.timer);
        this.watched.delete(id);
      }
    };
  }

  watchers(): number {
    let n = 0;
    for (const w of this.watched.values()) n += w.listeners.size;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watched.values()) clearInterval(w.timer);
    this.watched.clear();
  }
}
