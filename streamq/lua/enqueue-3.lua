#!lua
-- Adds jobs to their lanes (or to the delayed set), deduplicated by id, atomically.
-- KEYS: events, stats, delayed
-- ARGV[4..]: 10 per job: id, name, lane, spec, delay_ms (0 = now), max_attempts, lease_ms,
--            max_deliveries, dedup_ms (-1 = for as long as the record lives), parent ('' = none)
-- Returns per job {state, deduplicated (0|1)}.
local out = {}
local added = 0
for i = 4, #ARGV, 10 do
  local id, name, lane, spec = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local delay = tonumber(ARGV[i + 4])
  local jkey = job_key(id)
  local dup = redis.call('EXISTS', jkey) == 1
  local cur = {}
  if dup then cur = redis.call('HMGET', jkey, 'state', 'finished_at', 'dedup_ms') end
  if dup and is_terminal(cur[1]) and cur[3] and cur[3] ~= '-1' and cur[2] then
    -- A finished job past its dedup window may run again under the same id.
    if NOW >= tonumber(cur[2]) + tonumber(cur[3]) then
      redis.call('DEL', jkey)
      dup = false
    end
  end
  if dup then
    out[#out + 1] = {cur[1], 1}
  else
    local state = 'queued'
    if delay > 0 then state = 'scheduled' end
    local entry = ''
    if state == 'scheduled' then
      redis.call('ZADD', DELAYED_KEY, NOW + delay, id)
    else
      entry = push_lane(id, lane, spec)
    end
    -- The first event's id lets a reader of this job's history start right there.
    local ev = emit(state, id, name, 1)
    redis.call('HSET', jkey, 'state', state, 'name', name, 'lane', lane, 'spec', spec,
      'attempt', 1, 'max_attempts', ARGV[i + 5], 'lease_ms', ARGV[i + 6],
      'max_deliveries', ARGV[i + 7], 'dedup_ms', ARGV[i + 8], 'created_at', NOW,
      'run_at', NOW + delay, 'fence', 0, 'deliveries', 0, 'entry', entry, 'first_event', ev,
      'parent', ARGV[i + 9])
    added = added + 1
    out[#out + 1] = {state, 0}
  end
end
if added > 0 then redis.call('HINCRBY', STATS_KEY, 'enqueued', added) end
return out
