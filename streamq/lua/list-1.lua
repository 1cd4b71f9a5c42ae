#!lua
-- One page of a job index, newest first, from a cursor (score, id): the entries strictly after
-- it in (score desc, id desc) order, filtered against the job records. An id whose record is
-- gone is dropped from this index on the way (its other entries leave when met or swept).
-- KEYS: the index (zset)
-- ARGV[4] cursor score ('' = from the newest), ARGV[5] cursor id, ARGV[6] limit,
-- ARGV[7] most entries to examine in this call, ARGV[8] lowest score ('-inf' = none),
-- ARGV[9] state filter, ARGV[10] name filter, ARGV[11] lane filter ('' = any)
-- Returns {ids, their scores, next score, next id}; next score is '' when the index holds
-- nothing further.
local key = KEYS[1]
local cscore, cid = ARGV[4], ARGV[5]
local limit, budget, floor = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local want_state, want_name, want_lane = ARGV[9], ARGV[10], ARGV[11]
local BATCH = 100

-- The next batch after (score, id): by rank while the cursor's entry is still where it was
-- (ranks are exact then), else by score, skipping the cursor's own ties already passed.
local function batch_after(score, id)
  if score == '' then
    return redis.call('ZREVRANGEBYSCORE', key, '+inf', floor, 'WITHSCORES', 'LIMIT', 0, BATCH)
  end
  local at = redis.call('ZSCORE', key, id)
  if at and tonumber(at) == tonumber(score) then
    local rank = redis.call('ZREVRANK', key, id)
    local out = redis.call('ZREVRANGE', key, rank + 1, rank + BATCH, 'WITHSCORES')
    -- ZREVRANGE knows no floor: cut there.
    local kept = {}
    for i = 1, #out, 2 do
      if floor ~= '-inf' and tonumber(out[i + 1]) < tonumber(floor) then break end
      kept[#kept + 1] = out[i]
      kept[#kept + 1] = out[i + 1]
    end
    return kept
  end
  local out, offset = {}, 0
  while true do
    local got = redis.call('ZREVRANGEBYSCORE', key, score, floor, 'WITHSCORES', 'LIMIT', offset,
      BATCH)
    if #got == 0 then return out end
    for i = 1, #got, 2 do
      if tonumber(got[i + 1]) < tonumber(score) or got[i] < id then
        out[#out + 1] = got[i]
        out[#out + 1] = got[i + 1]
      end
    end
    if #out > 0 then return out end
    offset = offset + BATCH
  end
end

local ids, scores = {}, {}
local last_score, last_id = cscore, cid
local examined = 0
while #ids < limit and examined < budget do
  local batch = batch_after(last_score, last_id)
  if #batch == 0 then return {ids, scores, '', ''} end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    examined = examined + 1
    last_score, last_id = score, id
    local h = redis.call('HMGET', job_key(id), 'state', 'name', 'lane')
    if not h[1] then
      redis.call('ZREM', key, id)
    elseif (want_state == '' or h[1] == want_state) and (want_name == '' or h[2] == want_name)
        and (want_lane == '' or h[3] == want_lane) then
      ids[#ids + 1] = id
      scores[#scores + 1] = score
      if #ids >= limit then break end
    end
    if examined >= budget then break end
  end
end
return {ids, scores, last_score, last_id}
