#!lua flags=allow-oom
-- Records that a child of a flow parent finished (idempotent: a set of finished children), and
-- once every child is accounted for decides the parent by its policy: onto its lane (queued),
-- or into the dead-letter stream with the reason.
-- KEYS: events, stats
-- ARGV[4] parent id, ARGV[5] child as 'id queue', ARGV[6] outcome (c completed, d dead,
-- x cancelled), ARGV[7] dead maxlen, ARGV[8] ttl ms of a dead parent's record, ARGV[9] keep_last,
-- ARGV[10] ttl ms of the flow's bookkeeping once decided, ARGV[11] waiting parents key
-- Returns {'none'} (no such flow), {'waiting', finished, total}, {'decided'} (already was),
-- {'queued'}, or {'dead', grandparent id, grandparent queue}.
local pid, member, outcome = ARGV[4], ARGV[5], ARGV[6]
local fkey = PREFIX .. 'flow:' .. pid
local f = redis.call('HMGET', fkey, 'total', 'policy', 'threshold', 'parent', 'parent_queue')
if not f[1] then return {'none'} end
if redis.call('SADD', fkey .. ':done', member) == 1 and outcome ~= 'c' then
  redis.call('SADD', fkey .. ':failed', member)
end
local total = tonumber(f[1])
local finished = redis.call('SCARD', fkey .. ':done')
if finished < total then return {'waiting', finished, total} end
local h = load_job(pid)
if not h or h.state ~= 'waiting-children' then return {'decided'} end
redis.call('ZREM', ARGV[11], pid)
local failed = redis.call('SCARD', fkey .. ':failed')
local completed = finished - failed
local err = nil
if f[2] == 'fail' and failed > 0 then
  err = failed .. ' of ' .. total .. ' children failed (policy fail)'
elseif f[2] == 'threshold' then
  local needed = math.ceil(tonumber(f[3]) * total - 1e-9)
  if completed < needed then
    err = failed .. ' of ' .. total .. ' children failed; threshold ' .. f[3] .. ' needs ' ..
      needed .. ' completed'
  end
end
local keep = tonumber(ARGV[10])
for _, k in ipairs({fkey, fkey .. ':children', fkey .. ':done', fkey .. ':failed'}) do
  redis.call('PEXPIRE', k, keep)
end
if not err then
  redis.call('HSET', job_key(pid), 'state', 'queued', 'entry', push_lane(pid, h.lane, h.spec))
  index_state(pid, 'waiting-children', 'queued', h.name)
  emit('queued', pid, h.name, h.attempt, {'r', completed .. ' of ' .. total .. ' children completed'})
  return {'queued'}
end
bury(pid, h, h.lane, 'children_failed', err, ARGV[7])
retire(pid, tonumber(ARGV[8]), tonumber(ARGV[9]))
return {'dead', f[4] or '', f[5] or ''}
