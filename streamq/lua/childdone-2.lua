#!lua flags=allow-oom
-- Records that a child of a flow parent finished (idempotent: a set of finished children) and
-- decides the parent: onto its lane (queued), or into the dead-letter stream with the reason.
-- A failed child is weighed by its own failure policy if it has one, else by the parent's:
--   fail_parent      the parent fails at once (so does policy fail, and threshold once the
--                    threshold can no longer be met);
--   continue_parent  the parent is queued at once;
--   ignore           the child counts as finished, not failed (listed apart as ignored);
--   remove           the child is dropped from the flow, as if it had never been in it.
-- Otherwise the parent is decided once every child is accounted for.
-- KEYS: events, stats
-- ARGV[4] parent id, ARGV[5] child as 'id queue', ARGV[6] outcome (c completed, d dead,
-- x cancelled), ARGV[7] dead maxlen, ARGV[8] ttl ms of a dead parent's record, ARGV[9] keep_last,
-- ARGV[10] ttl ms of the flow's bookkeeping once decided, ARGV[11] waiting parents key
-- Returns {'none'} (no such flow), {'waiting', finished, total}, {'decided'} (already was),
-- {'queued'}, or {'dead', grandparent id, grandparent queue, cancel unfinished children (0|1)}.
local pid, member, outcome = ARGV[4], ARGV[5], ARGV[6]
local fkey = PREFIX .. 'flow:' .. pid
local f = redis.call('HMGET', fkey, 'total', 'policy', 'threshold', 'parent', 'parent_queue',
  'cancel_children')
if not f[1] then return {'none'} end
local removed = redis.call('SISMEMBER', fkey .. ':removed', member) == 1
local own = nil
if outcome ~= 'c' and not removed then
  own = redis.call('HGET', fkey .. ':on_failure', member)
  if own == false then own = nil end
end
local early = nil
if removed then
  -- Told again about a child already dropped from the flow: nothing changes.
elseif own == 'remove' then
  if redis.call('SADD', fkey .. ':removed', member) == 1 then
    redis.call('LREM', fkey .. ':children', 1, member)
    redis.call('HINCRBY', fkey, 'total', -1)
  end
elseif redis.call('SADD', fkey .. ':done', member) == 1 and outcome ~= 'c' then
  if own == 'ignore' then
    redis.call('SADD', fkey .. ':ignored', member)
  else
    redis.call('SADD', fkey .. ':failed', member)
    if own == 'continue_parent' then early = 'queue'
    elseif own == 'fail_parent' or (own == nil and f[2] == 'fail') then early = 'fail' end
  end
end
local total = tonumber(redis.call('HGET', fkey, 'total'))
local finished = redis.call('SCARD', fkey .. ':done')
local failed = redis.call('SCARD', fkey .. ':failed')
local ignored = redis.call('SCARD', fkey .. ':ignored')
local completed = finished - failed - ignored
local needed = nil
if f[2] == 'threshold' then
  needed = math.ceil(tonumber(f[3]) * (total - ignored) - 1e-9)
  -- Too many failed for the threshold to be met by the children still running.
  if not early and total - ignored - failed < needed then early = 'fail' end
end
if not early and finished < total then return {'waiting', finished, total} end
local h = load_job(pid)
if not h or h.state ~= 'waiting-children' then return {'decided'} end
redis.call('ZREM', ARGV[11], pid)
local err = nil
if early == 'fail' and own == 'fail_parent' then
  err = 'child ' .. member .. ' failed (fail_parent)'
elseif f[2] == 'threshold' and early ~= 'queue' and completed < needed then
  err = failed .. ' of ' .. total .. ' children failed; threshold ' .. f[3] .. ' needs ' ..
    needed .. ' completed'
elseif early ~= 'queue' and f[2] == 'fail' and failed > 0 then
  err = failed .. ' of ' .. total .. ' children failed (policy fail)'
end
local keep = tonumber(ARGV[10])
for _, k in ipairs({fkey, fkey .. ':children', fkey .. ':done', fkey .. ':failed',
    fkey .. ':ignored', fkey .. ':removed', fkey .. ':on_failure'}) do
  redis.call('PEXPIRE', k, keep)
end
if not err then
  local why = completed .. ' of ' .. total .. ' children completed'
  if early == 'queue' then why = 'child ' .. member .. ' failed (continue_parent)' end
  redis.call('HSET', job_key(pid), 'state', 'queued', 'entry', push_lane(pid, h.lane, h.spec))
  index_state(pid, 'waiting-children', 'queued', h.name)
  emit('queued', pid, h.name, h.attempt, {'r', why})
  return {'queued'}
end
bury(pid, h, h.lane, 'children_failed', err, ARGV[7])
retire(pid, tonumber(ARGV[8]), tonumber(ARGV[9]))
return {'dead', f[4] or '', f[5] or '', f[6] or '0'}
