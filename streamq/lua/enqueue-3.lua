#!lua
-- Adds jobs to their lanes (or to the delayed set), deduplicated by id, atomically.
-- KEYS: events, stats, delayed
-- ARGV[4..]: 10 per job: id, name, lane, spec, delay_ms (0 = now), max_attempts, lease_ms,
--            max_deliveries, dedup_ms (-1 = for as long as the record lives), parent ('' = none)
-- Returns per job {state, deduplicated (0|1)}.
local out = {}
local added = 0
for i = 4, #ARGV, 10 do
  local j = job_args(i)
  local id = j.id
  local jkey = job_key(id)
  local dup = redis.call('EXISTS', jkey) == 1
  local cur = {}
  if dup then cur = redis.call('HMGET', jkey, 'state', 'finished_at', 'dedup_ms', 'name', 'tags') end
  if dup and is_terminal(cur[1]) and cur[3] and cur[3] ~= '-1' and cur[2] then
    -- A finished job past its dedup window may run again under the same id.
    if NOW >= tonumber(cur[2]) + tonumber(cur[3]) then
      redis.call('DEL', jkey, log_key(id))
      untag(id, cur[5])
      index_state(id, cur[1], nil, cur[4])
      dup = false
    end
  end
  if dup then
    out[#out + 1] = {cur[1], 1}
  else
    local state = 'queued'
    if j.delay_ms > 0 then state = 'scheduled' end
    j.entry = ''
    if state == 'scheduled' then
      redis.call('ZADD', DELAYED_KEY, NOW + j.delay_ms, id)
    else
      j.entry = push_lane(id, j.lane, j.spec)
    end
    -- The first event's id lets a reader of this job's history start right there.
    j.first_event = emit(state, id, j.name, 1)
    j.run_at = NOW + j.delay_ms
    new_job(id, state, j)
    added = added + 1
    out[#out + 1] = {state, 0}
  end
end
if added > 0 then redis.call('HINCRBY', STATS_KEY, 'enqueued', added) end
return out
