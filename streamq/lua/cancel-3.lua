#!lua flags=allow-oom
-- Cancels a job: a waiting one never runs; an active one is flagged, and its worker cancels the
-- handler at its next lease renewal (or the reclaimer finishes it if the worker is gone).
-- KEYS: events, stats, delayed
-- ARGV[4] id, ARGV[5] ttl ms, ARGV[6] keep_last
-- Returns the state after the call ('cancelling' for an active job), or false if no such job.
local id = ARGV[4]
local jkey = job_key(id)
local h = load_job(id)
if not h then return false end
if is_terminal(h.state) then return h.state end
if h.state == 'active' then
  redis.call('HSET', jkey, 'cancel', 1)
  return 'cancelling'
end
if h.state == 'queued' and h.entry then
  -- Not yet delivered: removing the entry keeps any worker from ever reading it.
  redis.call('XDEL', lane_key(h.lane), h.entry)
end
redis.call('ZREM', DELAYED_KEY, id)
redis.call('ZREM', SUSPECTS_KEY, id)
redis.call('HSET', jkey, 'state', 'cancelled', 'finished_at', NOW)
redis.call('HDEL', jkey, 'entry')
index_state(id, h.state, 'cancelled', h.name)
emit('cancelled', id, h.name, h.attempt)
redis.call('HINCRBY', STATS_KEY, 'cancelled', 1)
retire(id, tonumber(ARGV[5]), tonumber(ARGV[6]))
return 'cancelled'
