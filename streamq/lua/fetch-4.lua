#!lua
-- Promotes due delayed jobs, then delivers up to COUNT jobs from the lanes in the order given,
-- marking each active with a fresh fencing token.
-- KEYS: events, stats, delayed, paused
-- ARGV[4] consumer, ARGV[5] count, ARGV[6] promote limit, ARGV[7] '1' if the worker may take a
-- suspect, ARGV[8] the worker's own task limits, JSON {name: [lease_ms, max_deliveries]} (they
-- replace the stored ones for the delivery), ARGV[9..] lanes, highest first
-- Returns {paused (0|1), jobs, next_due_ms (-1 = none), last entry id per lane (when no job),
--   suspects waiting} where a job is {entry_id, lane, id, spec, attempt, fence, deliveries, lost}.
-- A suspect is a job whose earlier delivery was lost with its worker (it may be what killed
-- it). It is only ever delivered alone, to an idle worker that runs it in quarantine, so a
-- poison job cannot take the jobs beside it down with it again and again. Suspects wait in a
-- set of their own (their entries pending), ahead of the backlog: while one waits, a busy
-- worker gets no new job, so some worker soon has nothing in flight and runs it next.
-- A job this consumer handed back for lack of a handler ('avoid', until 'avoid_until') is left
-- for other workers meanwhile.
local consumer = ARGV[4]
local remaining = tonumber(ARGV[5])
local may_take_suspect = ARGV[7] == '1'
local limits = cjson.decode(ARGV[8])
KEEP_REPLY = false  -- only a fetch that delivers jobs must answer a re-send with them
local LANE_ARG = 9

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

if redis.call('EXISTS', KEYS[4]) == 1 then return {1, {}, next_due(), {}, 0} end

local function deliver(eid, lane, id, spec, h)
  KEEP_REPLY = true
  local fence = tonumber(h[5]) + 1
  local deliveries = tonumber(h[6]) + 1
  local lim = limits[h[3]]
  if lim then
    redis.call('HSET', job_key(id), 'state', 'active', 'consumer', consumer, 'renewed', NOW,
      'started_at', NOW, 'fence', fence, 'deliveries', deliveries, 'lease_ms', lim[1],
      'max_deliveries', lim[2])
  else
    redis.call('HSET', job_key(id), 'state', 'active', 'consumer', consumer, 'renewed', NOW,
      'started_at', NOW, 'fence', fence, 'deliveries', deliveries)
  end
  emit('active', id, h[3], h[2])
  return {eid, lane, id, spec, tonumber(h[2]), fence, deliveries, tonumber(h[7] or '0')}
end

local suspects = redis.call('ZCARD', SUSPECTS_KEY)
if suspects > 0 and not may_take_suspect then return {0, {}, next_due(), {}, suspects} end
while suspects > 0 do
  local id = redis.call('ZRANGE', SUSPECTS_KEY, 0, 0)[1]
  redis.call('ZREM', SUSPECTS_KEY, id)
  suspects = suspects - 1
  local h = redis.call('HMGET', job_key(id), 'state', 'attempt', 'name', 'entry', 'fence',
    'deliveries', 'lost', 'lane', 'spec')
  if h[1] == 'queued' and h[4] and h[4] ~= '' then
    local lane = h[8]
    if redis.call('XCLAIM', lane_key(lane), GROUP, consumer, 0, h[4], 'JUSTID')[1] then
      return {0, {deliver(h[4], lane, id, h[9], h)}, next_due(), {}, suspects}
    end
    -- Its entry left the group meanwhile: it goes back on its lane as a new one.
    redis.call('HSET', job_key(id), 'entry', push_lane(id, lane, h[9]))
  end
end

local jobs = {}
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
        'deliveries', 'lost', 'avoid', 'avoid_until')
      local lost = tonumber(h[7] or '0')
      if h[1] ~= 'queued' or h[4] ~= eid then
        -- Cancelled, expired or superseded while waiting: the entry is stale.
        drop_entry(lane, eid)
      elseif lost > 0 then
        -- A suspect on its lane (handed back at a shutdown, say): into quarantine, pending.
        redis.call('ZADD', SUSPECTS_KEY, NOW, id)
        suspects = suspects + 1
      elseif h[8] == consumer and tonumber(h[9]) > NOW then
        -- Handed back by this worker (no handler here): to the back of its lane, for others.
        drop_entry(lane, eid)
        redis.call('HSET', jkey, 'entry', push_lane(id, lane, f[4]))
      else
        jobs[#jobs + 1] = deliver(eid, lane, id, f[4], h)
        remaining = remaining - 1
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
return {0, jobs, next_due(), last_ids, suspects}
