#!lua
-- Puts dead letters back on their lanes as fresh jobs (attempts and deliveries start over).
-- KEYS: events, dead
-- ARGV[4] limit for 'all' mode, ARGV[5] mode ('ids' | 'all'), ARGV[6..] dead entry ids
-- Returns {entries processed, jobs replayed}.
local entries = select_dead_letters(tonumber(ARGV[4]), ARGV[5], 6)
local n = 0
for _, e in ipairs(entries) do
  local f = {}
  for k = 1, #e[2], 2 do f[e[2][k]] = e[2][k + 1] end
  local jkey = job_key(f.id)
  local st, tags = unpack(redis.call('HMGET', jkey, 'state', 'tags'))
  redis.call('XDEL', DEAD_KEY, e[1])
  if not st or st == 'dead' then
    -- The record may have expired: the dead letter carries everything needed to rebuild it.
    redis.call('DEL', jkey, log_key(f.id))
    index_state(f.id, 'dead', nil, f.name)
    new_job(f.id, 'queued', {name = f.name, lane = f.lane, spec = f.spec,
      max_attempts = f.max_attempts, lease_ms = f.lease_ms, max_deliveries = f.max_deliveries,
      dedup_ms = -1, entry = push_lane(f.id, f.lane, f.spec), replayed_from = e[1]})
    -- The replayed job keeps its tags (their sets still hold its id).
    if tags then redis.call('HSET', jkey, 'tags', tags) end
    emit('queued', f.id, f.name, 1, {'r', 'replayed'})
    n = n + 1
  end
end
return {#entries, n}
