/**
 * The Lua functions every session script of `redis-scripts.ts` starts with: number printing,
 * loading and storing a session hash, range lists and the session rules' helpers.
 */
export const PRELUDE = `
local function num(x) return string.format('%.0f', x) end
local function load(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
local function parse_ranges(text)
  local out = {}
  if text == nil or text == '' then return out end
  for s, e in string.gmatch(text, '(%d+)%-(%d+)') do out[#out + 1] = { tonumber(s), tonumber(e) } end
  return out
end
local function format_ranges(list)
  local parts = {}
  for i, r in ipairs(list) do parts[i] = num(r[1]) .. '-' .. num(r[2]) end
  return table.concat(parts, ',')
end
-- addRange of protocol/range-set.ts: merge with every range it overlaps or touches.
local function add_range(list, s, e)
  local out, placed = {}, false
  for _, r in ipairs(list) do
    if r[2] + 1 < s then
      out[#out + 1] = r
    elseif e + 1 < r[1] then
      if not placed then out[#out + 1] = { s, e }; placed = true end
      out[#out + 1] = r
    else
      if r[1] < s then s = r[1] end
      if r[2] > e then e = r[2] end
    end
  end
  if not placed then out[#out + 1] = { s, e } end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end
local function complete(rec)
  if rec.total == nil or rec.total == '' then return false end
  local list = parse_ranges(rec.ranges)
  return #list == 1 and list[1][1] == 0 and list[1][2] == tonumber(rec.total) - 1
end
local function contiguous_end(rec)
  local list = parse_ranges(rec.ranges)
  if #list > 0 and list[1][1] == 0 then return list[1][2] + 1 end
  return 0
end
-- appendsAt of session/model.ts.
local function appends_at(rec, offset)
  if offset == contiguous_end(rec) then return true end
  return complete(rec) and (offset == tonumber(rec.total) - 1 or offset == tonumber(rec.total))
end
local function has_completion(rec) return rec.completion ~= nil and rec.completion ~= '' end
local function claim_live(rec, now, handoff_timeout, instance, single)
  if rec.claimOwner == nil or rec.claimOwner == '' or has_completion(rec) then return false end
  if single == '1' and rec.claimOwner ~= instance then return false end
  return now - tonumber(rec.claimAt) <= handoff_timeout
end
-- Live reservations of a session (dead tokens are dropped), as { token, start, end }.
local function live_reservations(index, prefix)
  local out = {}
  for _, token in ipairs(redis.call('SMEMBERS', index)) do
    local v = redis.call('GET', prefix .. token)
    if not v then
      redis.call('SREM', index, token)
    else
      local dash = string.find(v, '-', 1, true)
      out[#out + 1] = { token, tonumber(string.sub(v, 1, dash - 1)), tonumber(string.sub(v, dash + 1)) }
    end
  end
  return out
end
local function flat(rec)
  local out = {}
  for k, v in pairs(rec) do out[#out + 1] = k; out[#out + 1] = v end
  return out
end
`;
