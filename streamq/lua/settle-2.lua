#!lua flags=allow-oom
-- Records the outcomes of a batch of deliveries. Each is fenced: it applies only while the job
-- is still active under the token its worker was given, so a worker whose lease was taken
-- cannot complete or fail the job afterwards. allow-oom: finishing work must succeed even when
-- the server refuses new jobs for lack of memory.
-- KEYS: events, stats
-- ARGV[4] dead maxlen, ARGV[5] keep_last, then 8 per job:
--   outcome, id, lane, entry_id, fence, data, number, text
--   c = completed (data = result, number = ttl ms)
--   r = retry (data = error, number = delay ms, text = '1' counts an attempt, '0' does not)
--   d = dead (data = error, number = ttl ms, text = reason)
--   x = cancelled (number = ttl ms)
--   h = hand back to the lane for another worker (shutdown), not counted as a delivery;
--       text = a consumer without the handler, which leaves the job alone for number ms
-- Returns per job 1 (applied) or 0 (fenced out).
local dead_maxlen = ARGV[4]
local keep_last = tonumber(ARGV[5])
local out = {}
local counts = {completed = 0, retried = 0, failed = 0, cancelled = 0}
for i = 6, #ARGV, 8 do
  local outcome, id, lane, eid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local fence, data, num, text = tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6]), ARGV[i + 7]
  local jkey = job_key(id)
  local g = holds_lease(id, fence, eid, 'name', 'attempt')
  if not g then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    drop_entry(lane, eid)
    -- Completion (the common case) needs only what was just read; the rest loads it all.
    local h = {name = g[1], attempt = g[2]}
    if outcome ~= 'c' then h = load_job(id) end
    if outcome == 'c' then
      -- 'entry' and 'consumer' stay: harmless on a finished record, and one command less.
      redis.call('HSET', jkey, 'state', 'completed', 'result', data, 'finished_at', NOW,
        'progress', 100)
      index_state(id, 'active', 'completed', h.name)
      emit('completed', id, h.name, h.attempt)
      retire(id, num, keep_last)
      counts.completed = counts.completed + 1
    elseif outcome == 'r' then
      local attempt = h.attempt
      if text == '1' then attempt = redis.call('HINCRBY', jkey, 'attempt', 1) end
      redis.call('HSET', jkey, 'state', 'retrying', 'error', data, 'run_at', NOW + num)
      redis.call('HDEL', jkey, 'entry', 'consumer')
      redis.call('ZADD', DELAYED_KEY, NOW + num, id)
      emit('retrying', id, h.name, attempt, {'e', data, 'd', num})
      counts.retried = counts.retried + 1
      if text == '1' then counts.failed = counts.failed + 1 end
    elseif outcome == 'd' then
      bury(id, h, lane, text, data, dead_maxlen)
      retire(id, num, keep_last)
      counts.failed = counts.failed + 1
    elseif outcome == 'x' then
      redis.call('HSET', jkey, 'state', 'cancelled', 'finished_at', NOW)
      redis.call('HDEL', jkey, 'entry', 'consumer')
      index_state(id, 'active', 'cancelled', h.name)
      emit('cancelled', id, h.name, h.attempt)
      retire(id, num, keep_last)
      counts.cancelled = counts.cancelled + 1
    elseif outcome == 'h' then
      redis.call('HINCRBY', jkey, 'deliveries', -1)
      redis.call('HSET', jkey, 'state', 'queued', 'entry', push_lane(id, lane, h.spec))
      redis.call('HDEL', jkey, 'consumer')
      local why = 'handed back'
      if text ~= '' then
        redis.call('HSET', jkey, 'avoid', text, 'avoid_until', NOW + num)
        why = 'handed back: no handler in that worker'
      end
      emit('queued', id, h.name, h.attempt, {'r', why})
    end
  end
end
for k, v in pairs(counts) do
  if v > 0 then redis.call('HINCRBY', STATS_KEY, k, v) end
end
return out
