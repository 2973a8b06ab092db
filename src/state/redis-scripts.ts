/**
 * The session rules of `session/model.ts`, run inside Redis so that several gateway instances
 * decide atomically: one script admits a segment (reserve-and-read), one acknowledges it (the
 * fenced commit), so a segment costs two round trips. The contract suite runs the same scenarios
 * against these scripts and the file engine, and a property test compares both with the model.
 *
 * A session is a hash `s:<id>`: total ('' unknown), ranges (`s-e,s-e`, decimal, ascending,
 * disjoint, non-adjacent), dataPath, fileId ('' none yet), replaces, fileName, contentType,
 * fieldName, createdAt, updatedAt, expiresAt, claimOwner/claimAt (the hand-off claim), completion
 * (JSON, opaque here); a declared session (tus, IETF draft) also has declared ('1'), concat and
 * metadata. Reservations: set `rs:<id>` of tokens, each `rv:<token>` = `start-end` with
 * a time to live. Tombstones: hash `t:<id>` (dataPath, fileId, retiredAt), listed in `tombs`.
 * Numbers stay below 2^53 and are printed with %.0f (Lua's tostring would round them).
 */

import { PRELUDE } from './redis-prelude';

/**
 * decideBegin. KEYS: s, rs, rv (the new reservation's key), ids, t.
 * ARGV: now, start, end, total ('' unknown), id, dataPath, fileName, contentType, fieldName,
 * sessionTimeoutMs, handoffTimeoutMs, instance, single ('1'/'0'), reservation ttl ms, token,
 * reservation key prefix, mode ('append', 'declare' or ''), concat, metadata.
 * → {'expired', record…} | {'refuse', status, reason} | {'ok', created '1'|'0', reserved 's-e', record…}
 */
export const BEGIN = `${PRELUDE}
local now = tonumber(ARGV[1])
local rec = load(KEYS[1])
local total = ARGV[4]
local mode = ARGV[17]
if rec then
  if tonumber(rec.expiresAt) <= now then return { 'expired', flat(rec) } end
  if rec.total == '' and rec.declared ~= '1' then return { 'refuse', '503', 'a single-shot upload of this session is in flight' } end
  if total ~= '' and rec.total ~= '' and rec.total ~= total then
    if has_completion(rec) then
      return { 'refuse', '409', 'session ' .. ARGV[5] .. ' already completed an upload of ' .. rec.total .. ' bytes' }
    end
    return { 'refuse', '409', 'total ' .. total .. ' differs from the session\\'s total ' .. rec.total }
  end
  if total ~= '' and rec.total == '' then
    local list = parse_ranges(rec.ranges)
    local held = 0
    if #list > 0 then held = list[#list][2] + 1 end
    if tonumber(total) < held then return { 'refuse', '409', 'length ' .. total .. ' is less than the ' .. num(held) .. ' bytes already received' } end
  end
  if claim_live(rec, now, tonumber(ARGV[11]), ARGV[12], ARGV[13]) then
    return { 'refuse', '503', 'the upload is being handed to the backend; retry shortly' }
  end
  if mode == 'append' and not appends_at(rec, tonumber(ARGV[2])) then
    return { 'refuse', '409', 'offset ' .. ARGV[2] .. ' is not where the upload continues (' .. num(contiguous_end(rec)) .. ')' }
  end
  total = rec.total
elseif mode == 'append' then
  return { 'refuse', '404', 'unknown upload ' .. ARGV[5] }
end
local s, e
if mode ~= '' or (rec and rec.declared == '1') then
  -- Appends and declared sessions: the request's own bytes, within the length once it is known.
  local limit = total
  if limit == '' then limit = ARGV[4] end
  s, e = tonumber(ARGV[2]), tonumber(ARGV[3])
  if limit ~= '' and e > tonumber(limit) - 1 then
    if e ~= 9007199254740991 then
      return { 'refuse', '413', 'the bytes end at ' .. num(e + 1) .. ', beyond the upload\\'s length ' .. limit }
    end
    e = math.max(tonumber(limit) - 1, s - 1)
  end
elseif total == '' then
  s, e = 0, 9007199254740991
elseif ARGV[4] == '' then
  s, e = 0, tonumber(total) - 1
else
  s, e = tonumber(ARGV[2]), tonumber(ARGV[3])
end
local live = live_reservations(KEYS[2], ARGV[16])
for _, r in ipairs(live) do
  if r[2] <= e and s <= r[3] then return { 'refuse', '503', 'the range overlaps a segment of this session still in flight' } end
end
local created = '0'
if rec then
  -- Its creator is still making the data file: wait for it.
  if rec.fileId == '' and #live > 0 and not complete(rec) then
    return { 'refuse', '503', 'the session is being created; retry shortly' }
  end
else
  local replaces = ''
  local tomb = load(KEYS[5])
  if tomb and tomb.dataPath == ARGV[6] then replaces = tomb.fileId end
  rec = { id = ARGV[5], total = ARGV[4], ranges = '', dataPath = ARGV[6], fileId = '', replaces = replaces,
    fileName = ARGV[7], contentType = ARGV[8], fieldName = ARGV[9],
    createdAt = ARGV[1], updatedAt = ARGV[1], expiresAt = num(now + tonumber(ARGV[10])) }
  if mode == 'declare' then
    rec.declared = '1'
    if ARGV[18] ~= '' then rec.concat = ARGV[18] end
    if ARGV[19] ~= '' then rec.metadata = ARGV[19] end
  end
  redis.call('HSET', KEYS[1], unpack(flat(rec)))
  redis.call('SADD', KEYS[4], ARGV[5])
  created = '1'
end
local ttl = tonumber(ARGV[14])
redis.call('SET', KEYS[3], num(s) .. '-' .. num(e), 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[15])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return { 'ok', created, num(s) .. '-' .. num(e), flat(rec) }
`;

/**
 * The data file of a new session exists: its identity. Fenced by the creator's reservation.
 * KEYS: s, rv, t. ARGV: createdAt, fileId. → 'ok' | 'fenced' | 'gone'
 */
export const RECORD_FILE = `${PRELUDE}
if redis.call('EXISTS', KEYS[2]) == 0 then return 'fenced' end
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[1] then return 'gone' end
redis.call('HSET', KEYS[1], 'fileId', ARGV[2], 'replaces', '')
redis.call('DEL', KEYS[3])
return 'ok'
`;

/**
 * decideCommit, fenced by the segment's reservation (consumed here).
 * KEYS: s, rv, rs. ARGV: token, createdAt, start, end (< start: no bytes), total ('' unknown), now, sessionTimeoutMs,
 * handoffTimeoutMs, instance, single, fileName, contentType, fieldName.
 * → {'fenced'} | {'refuse', status, reason} | {'replay'|'partial'|'handoff', record…}
 */
export const COMMIT = `${PRELUDE}
if redis.call('EXISTS', KEYS[2]) == 0 then return { 'fenced' } end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
local now = tonumber(ARGV[6])
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[2] or tonumber(rec.expiresAt) <= now then
  return { 'refuse', '409', 'the session expired while the segment was being received' }
end
if complete(rec) then
  if has_completion(rec) then return { 'replay', flat(rec) } end
  if claim_live(rec, now, tonumber(ARGV[8]), ARGV[9], ARGV[10]) then
    return { 'refuse', '503', 'the upload is being handed to the backend; retry shortly' }
  end
else
  local s, e = tonumber(ARGV[3]), tonumber(ARGV[4])
  if s <= e or (rec.total == '' and ARGV[5] ~= '') then
    if rec.total == '' then rec.total = ARGV[5] end
    if s <= e then rec.ranges = format_ranges(add_range(parse_ranges(rec.ranges), s, e)) end
    rec.updatedAt = ARGV[6]
    rec.expiresAt = num(now + tonumber(ARGV[7]))
  end
end
local kind = 'partial'
-- A partial upload of a tus concatenation is complete without a hand-off.
if complete(rec) and rec.concat ~= 'partial' then
  kind = 'handoff'
  rec.claimOwner = ARGV[9]
  rec.claimAt = ARGV[6]
  rec.fileName = ARGV[11]
  rec.contentType = ARGV[12]
  rec.fieldName = ARGV[13]
  rec.updatedAt = ARGV[6]
end
redis.call('HSET', KEYS[1], unpack(flat(rec)))
return { kind, flat(rec) }
`;

/**
 * A failed segment: release its reservation; report whether the session never got a byte and
 * has nothing else in flight (then the caller removes its file and `DISCARD`s it).
 * KEYS: s, rv, rs. ARGV: token, reservation key prefix. → 'unused' | 'kept'
 */
export const ABORT = `${PRELUDE}
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
local rec = load(KEYS[1])
if not rec or rec.ranges ~= '' or has_completion(rec) or rec.declared == '1' then return 'kept' end
if #live_reservations(KEYS[3], ARGV[2]) > 0 then return 'kept' end
return 'unused'
`;

/**
 * Removes a session that never got a byte (its file already removed), if it still is one.
 * KEYS: s, rs, ids. ARGV: createdAt, id, reservation key prefix. → 1 | 0
 */
export const DISCARD = `${PRELUDE}
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[1] or rec.ranges ~= '' or has_completion(rec) then return 0 end
if #live_reservations(KEYS[2], ARGV[3]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
`;

/**
 * decideFinish: the backend's answer. KEYS: s. ARGV: createdAt, completion JSON, expiresAt. → 1 | 0
 */
export const FINISH = `${PRELUDE}
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[1] or has_completion(rec) then return 0 end
redis.call('HSET', KEYS[1], 'completion', ARGV[2], 'expiresAt', ARGV[3])
redis.call('HDEL', KEYS[1], 'claimOwner', 'claimAt')
return 1
`;

/** decideRelease. KEYS: s. ARGV: createdAt, owner, at. → 1 | 0 */
export const RELEASE = `${PRELUDE}
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[1] or rec.claimOwner ~= ARGV[2] or rec.claimAt ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], 'claimOwner', 'claimAt')
return 1
`;

/**
 * The sweep: expire (remove) or retire (remove, leaving the tombstone) a session that is still
 * the expired one the caller saw. KEYS: s, rs, ids, t, tombs. ARGV: createdAt, now, id,
 * 'expire'|'retire', retiredAt. → 1 | 0
 */
export const SWEEP = `${PRELUDE}
local rec = load(KEYS[1])
if not rec or rec.createdAt ~= ARGV[1] or tonumber(rec.expiresAt) > tonumber(ARGV[2]) then return 0 end
if ARGV[4] == 'retire' then
  redis.call('HSET', KEYS[4], 'dataPath', rec.dataPath, 'fileId', rec.fileId, 'retiredAt', ARGV[5])
  redis.call('SADD', KEYS[5], ARGV[3])
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
`;

/**
 * decideTerminate: the client cancels the upload. Unless a hand-off is in progress, the session's
 * time is up now; the caller then sweeps it. KEYS: s. ARGV: now, handoffTimeoutMs, instance, single.
 * → {'none'} | {'refuse', status, reason} | {'ok', record…}
 */
export const TERMINATE = `${PRELUDE}
local now = tonumber(ARGV[1])
local rec = load(KEYS[1])
if not rec or tonumber(rec.expiresAt) <= now then return { 'none' } end
if claim_live(rec, now, tonumber(ARGV[2]), ARGV[3], ARGV[4]) then
  return { 'refuse', '409', 'the upload is being handed to the backend; it cannot be cancelled' }
end
rec.expiresAt = ARGV[1]
redis.call('HSET', KEYS[1], 'expiresAt', ARGV[1])
return { 'ok', flat(rec) }
`;

/** Drops a tombstone whose file the backend took. KEYS: t, tombs. ARGV: fileId, id. → 1 | 0 */
export const DROP_TOMBSTONE = `
if redis.call('HGET', KEYS[1], 'fileId') ~= ARGV[1] then
  if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;

/** Keeps a reservation alive. KEYS: rv, rs. ARGV: ttl ms. → 1 | 0 (lost) */
export const RENEW = `
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return 1
`;
