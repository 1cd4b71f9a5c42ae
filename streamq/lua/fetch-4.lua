#!lua
-- Promotes due delayed jobs, then delivers up to COUNT jobs from the lanes in the order given,
-- marking each active with a fresh fencing token.
-- KEYS: events, stats, delayed, paused
-- ARGV[4] consumer, ARGV[5] count, ARGV[6] promote limit, ARGV[7] '1' if the worker may take a
-- suspect, ARGV[8..] lanes, highest first
-- Returns {paused (0|1), jobs, next_due_ms (-1 = none), last entry id per lane (when no job)}
--   where a job is {entry_id, lane, id, spec, attempt, fence, deliveries, lost}.
-- A suspect is a job whose earlier delivery was lost with its worker (it may be what killed
-- it). It is only ever delivered alone, to an idle worker that runs it in quarantine, so a
-- poison job cannot take the jobs beside it down with it again and again.
local consumer = ARGV[4]
local remaining = tonumber(ARGV[5])
local may_take_suspect = ARGV[7] == '1'
local LANE_ARG = 8

local due = redis.call('ZRANGEBYSCORE', DELAYED_KEY, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(due) do
  redis.call('ZREM', DELAYED_KEY, id)
  local h = redis.call('HMGET', job_key(id), 'state', 'lane', 'spec', 'name', 'attempt')
  if h[1] == 'scheduled' or h[1] == 'retrying' then
    redis.call('HSET', job_key(id), 'state', 'queued', 'entry', push_lane(id, h[2], h[3]))
    emit('queued', id, h[4], h[5])
  end
end

local function next_due()
  local first = redis.call('ZRANGE', DELAYED_KEY, 0, 0, 'WITHSCORES')
  if first[2] then return tonumber(first[2]) end
  return -1
end

if redis.call('EXISTS', KEYS[4]) == 1 then return {1, {}, next_due(), {}} end

local jobs = {}
local solo = false
for li = LANE_ARG, #ARGV do
  if remaining <= 0 then break end
  local lane = ARGV[li]
  local lkey = lane_key(lane)
  local r = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', remaining,
    'STREAMS', lkey, '>')
  if type(r) == 'table' and not r.err then
    for _, e in ipairs(r[1][2]) do
      local eid, f = e[1], e[2]
      local id = f[2]
      local jkey = job_key(id)
      local h = redis.call('HMGET', jkey, 'state', 'attempt', 'name', 'entry', 'fence',
        'deliveries', 'lost')
      local lost = tonumber(h[7] or '0')
      if h[1] ~= 'queued' or h[4] ~= eid then
        -- Cancelled, expired or superseded while waiting: the entry is stale.
        drop_entry(lane, eid)
      elseif solo or (lost > 0 and (#jobs > 0 or not may_take_suspect)) then
        -- A suspect goes alone: this entry goes to the back of its lane, undelivered.
        drop_entry(lane, eid)
        redis.call('HSET', jkey, 'entry', push_lane(id, lane, f[4]))
      else
        local fence = tonumber(h[5]) + 1
        local deliveries = tonumber(h[6]) + 1
        redis.call('HSET', jkey, 'state', 'active', 'consumer', consumer, 'renewed', NOW,
          'started_at', NOW, 'fence', fence, 'deliveries', deliveries)
        emit('active', id, h[3], h[2])
        jobs[#jobs + 1] = {eid, lane, id, f[4], tonumber(h[2]), fence, deliveries, lost}
        remaining = remaining - 1
        if lost > 0 then solo = true; remaining = 0 end
      end
    end
  end
end

local last_ids = {}
if #jobs == 0 then
  -- Where the blocking wait should resume: after the newest entry already seen.
  for li = LANE_ARG, #ARGV do
    local last = redis.call('XREVRANGE', lane_key(ARGV[li]), '+', '-', 'COUNT', 1)
    if last[1] then last_ids[#last_ids + 1] = last[1][1] else last_ids[#last_ids + 1] = '0-0' end
  end
end
return {0, jobs, next_due(), last_ids}
