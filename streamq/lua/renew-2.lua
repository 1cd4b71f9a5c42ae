#!lua flags=allow-oom
-- Extends the leases of a worker's deliveries in one call and records its heartbeat.
-- KEYS: events, workers
-- ARGV[4] consumer, ARGV[5] heartbeat expiry ms, then 4 per job: id, lane, entry_id, fence
-- Returns {lost ids (token no longer valid), ids whose cancel was requested}
local consumer = ARGV[4]
local lost, cancel = {}, {}
for i = 6, #ARGV, 4 do
  local id, lane, eid, fence = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local jkey = job_key(id)
  local h = redis.call('HMGET', jkey, 'state', 'fence', 'entry', 'cancel')
  if h[1] ~= 'active' or tonumber(h[2]) ~= fence or h[3] ~= eid then
    lost[#lost + 1] = id
  else
    redis.call('XCLAIM', lane_key(lane), GROUP, consumer, 0, eid, 'JUSTID')
    redis.call('HSET', jkey, 'renewed', NOW)
    if h[4] then cancel[#cancel + 1] = id end
  end
end
redis.call('ZADD', KEYS[2], NOW, consumer)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', NOW - tonumber(ARGV[5]))
return {lost, cancel}
