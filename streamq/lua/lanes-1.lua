#!lua
-- One page per lane of the jobs waiting or running, found where they already are: a lane
-- stream holds an entry for each queued job, and its consumer group's pending list one for
-- each active job until it is settled. Newest entry first, from a cursor (ms, id): within one
-- ms, ids descending. Pages stop between two ms, so a cursor never splits one ms's entries.
-- KEYS: a lane of the queue (routes the call to the queue's slot)
-- ARGV[4] cursor ms ('' = from the newest), ARGV[5] cursor id, ARGV[6] limit,
-- ARGV[7] entries to examine per lane, ARGV[8] lowest ms ('-inf' = none),
-- ARGV[9] state ('queued' | 'active'), ARGV[10] name ('' = any), ARGV[11..] lanes
-- Returns per lane {ids, their ms, next ms, next id}; next ms is '' when the lane is done.
local cms, cid = ARGV[4], ARGV[5]
local limit, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local floor = tonumber(ARGV[8]) or -1
local want, want_name = ARGV[9], ARGV[10]
local BATCH = 100
local after_cursor = function(ms, id)
  return cms == '' or ms < tonumber(cms) or (ms == tonumber(cms) and id < cid)
end

local function matches(eid, id)
  local h = redis.call('HMGET', job_key(id), 'state', 'name', 'entry')
  return h[1] == want and h[3] == eid and (want_name == '' or h[2] == want_name)
end

local function page(found, exhausted, stop_ms)
  table.sort(found, function(a, b)
    if a[1] ~= b[1] then return a[1] > b[1] end
    return a[2] > b[2]
  end)
  local ids, scores = {}, {}
  for i = 1, math.min(#found, limit) do
    ids[i] = found[i][2]
    scores[i] = found[i][1]
  end
  if #found >= limit and not (exhausted and #found == limit) then
    return {ids, scores, tostring(found[limit][1]), found[limit][2]}
  end
  if exhausted or not stop_ms then return {ids, scores, '', ''} end
  -- The budget ran out: nothing at or above stop_ms is left unseen.
  return {ids, scores, tostring(stop_ms), '!'}
end

local function ms_of(eid) return tonumber(string.match(eid, '^(%d+)')) end

-- Queued: walk the stream down from the cursor.
local function walk(lkey)
  local found, examined, last_ms = {}, 0, nil
  local maxid = '+'
  if cid == '!' then
    -- Everything at cms was seen: go on below it.
    maxid = (tonumber(cms) - 1) .. '-18446744073709551615'
  elseif cms ~= '' then
    maxid = cms .. '-18446744073709551615'
  end
  while true do
    local entries = redis.call('XREVRANGE', lkey, maxid, '-', 'COUNT', BATCH)
    if #entries == 0 then return page(found, true) end
    for _, e in ipairs(entries) do
      local eid, id = e[1], e[2][2]
      local ms = ms_of(eid)
      if ms < floor then return page(found, true) end
      if last_ms and ms ~= last_ms then
        if #found >= limit then return page(found, false) end
        if examined >= budget then return page(found, false, last_ms) end
      end
      last_ms = ms
      examined = examined + 1
      if after_cursor(ms, id) and matches(eid, id) then found[#found + 1] = {ms, id} end
      maxid = '(' .. eid
    end
  end
end

-- Active: the pending list is as long as the workers' concurrency, so it is read whole (up to
-- MAX_PENDING entries per lane).
local MAX_PENDING = 5000
local function pending(lkey)
  local found = {}
  local r = redis.pcall('XPENDING', lkey, GROUP, '-', '+', MAX_PENDING)
  if type(r) ~= 'table' or r.err then return page(found, true) end
  for _, p in ipairs(r) do
    local eid = p[1]
    local ms = ms_of(eid)
    local e = redis.call('XRANGE', lkey, eid, eid)[1]
    if e and ms >= floor and after_cursor(ms, e[2][2]) and matches(eid, e[2][2]) then
      found[#found + 1] = {ms, e[2][2]}
    end
  end
  return page(found, true)
end

local out = {}
for i = 11, #ARGV do
  local lkey = lane_key(ARGV[i])
  if want == 'active' then out[#out + 1] = pending(lkey) else out[#out + 1] = walk(lkey) end
end
return out
