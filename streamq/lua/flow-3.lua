#!lua
-- Writes a flow parent: its job record in state waiting-children (on no lane), and the flow's
-- bookkeeping (how many children, the policy, the children's ids), once per parent id.
-- KEYS: events, stats, waiting parents (zset)
-- ARGV[4..13] the parent as enqueue-3 takes a job: id, name, lane, spec, delay_ms (unused),
--   max_attempts, lease_ms, max_deliveries, dedup_ms, parent ('' = none)
-- ARGV[14] policy (fail | ignore | threshold), ARGV[15] threshold, ARGV[16] queue of this
-- parent's own parent ('' = none), ARGV[17] cancel unfinished children when the parent fails
-- early (0|1), ARGV[18] n, ARGV[19..18+n] the children as 'id queue', ARGV[19+n..18+2n] each
-- child's own failure policy ('' = the parent's policy decides)
-- Returns {state, deduplicated (0|1)}.
local j = job_args(4)
local id = j.id
local cur = redis.call('HGET', job_key(id), 'state')
if cur then return {cur, 1} end
local fkey = PREFIX .. 'flow:' .. id
redis.call('DEL', fkey, fkey .. ':children', fkey .. ':done', fkey .. ':failed',
  fkey .. ':ignored', fkey .. ':removed', fkey .. ':on_failure')
local n = tonumber(ARGV[18])
j.entry = ''
j.first_event = emit('waiting-children', id, j.name, 1)
new_job(id, 'waiting-children', j)
redis.call('HSET', fkey, 'total', n, 'policy', ARGV[14], 'threshold', ARGV[15],
  'parent', ARGV[13], 'parent_queue', ARGV[16], 'cancel_children', ARGV[17], 'created_at', NOW)
-- In chunks: unpack() has a limit on how many values it spreads.
for first = 19, 18 + n, 1000 do
  local chunk = {'RPUSH', fkey .. ':children'}
  for i = first, math.min(first + 999, 18 + n) do chunk[#chunk + 1] = ARGV[i] end
  redis.call(unpack(chunk))
end
for i = 19, 18 + n do
  if ARGV[i + n] ~= '' then redis.call('HSET', fkey .. ':on_failure', ARGV[i], ARGV[i + n]) end
end
redis.call('ZADD', KEYS[3], NOW, id)
redis.call('HINCRBY', STATS_KEY, 'enqueued', 1)
return {'waiting-children', 0}
