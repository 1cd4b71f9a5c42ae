#!lua flags=allow-oom
-- Extends the leases of a worker's deliveries in one call and records its heartbeat.
-- KEYS: events, workers
-- ARGV[4] consumer, ARGV[5] heartbeat expiry ms, then 4 per job: id, lane, entry_id, fence
-- Returns {lost ids (token no longer valid), ids whose cancel was requested}
local consumer = ARGV[4]
KEEP_REPLY = false  -- a re-run renews the same leases and answers the same
local lost, cancel = {}, {}
for i = 6, #ARGV, 4 do
  local id, lane, eid, fence = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local h = holds_lease(id, fence, eid, 'cancel')
  if not h then
    lost[#lost + 1] = id
  else
    redis.call('XCLAIM', lane_key(lane), GROUP, consumer, 0, eid, 'JUSTID')
    redis.call('HSET', job_key(id), 'renewed', NOW)
    if h[1] then cancel[#cancel + 1] = id end
  end
end
redis.call('ZADD', KEYS[2], NOW, consumer)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', NOW - tonumber(ARGV[5]))
return {lost, cancel}
