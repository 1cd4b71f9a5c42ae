#!lua flags=allow-oom
-- Changes the lane (priority) of a job that waits: a queued job's entry leaves its lane's
-- stream and joins the tail of the new lane's; a scheduled or retrying job keeps its place in
-- the delayed set and is promoted onto the new lane. The record's spec (which carries the lane)
-- is swapped only if it is still the one the caller re-encoded, so two changes racing cannot
-- lose one. A job a worker holds or that has finished is refused.
-- KEYS: events, the new lane
-- ARGV[4] id, ARGV[5] new lane, ARGV[6] the spec read, ARGV[7] the spec with the new lane
-- Returns 'ok', 'same' (already there), 'changed' (the spec changed meanwhile), the state
-- that refused the change, or 'missing'.
KEEP_REPLY = false  -- a re-sent call finds the job moved already and answers 'same'
local id, lane = ARGV[4], ARGV[5]
local h = load_job(id)
if not h then return 'missing' end
if h.state ~= 'queued' and h.state ~= 'scheduled' and h.state ~= 'retrying' then
  return h.state
end
if h.lane == lane then return 'same' end
if h.spec ~= ARGV[6] then return 'changed' end
local jkey = job_key(id)
redis.call('HSET', jkey, 'lane', lane, 'spec', ARGV[7])
if h.state == 'queued' then
  -- drop_entry acks too: a suspect's entry may be pending in the old lane's group.
  if h.entry and h.entry ~= '' then drop_entry(h.lane, h.entry) end
  redis.call('HSET', jkey, 'entry', push_lane(id, lane, ARGV[7]))
end
emit(h.state, id, h.name, h.attempt, {'r', 'priority ' .. h.lane .. ' -> ' .. lane})
return 'ok'
