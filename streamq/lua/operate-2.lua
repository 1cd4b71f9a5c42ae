#!lua flags=allow-oom
-- Acts on jobs by id, each checked against its state in the same call (so a worker or the
-- scheduler racing the action leaves every job in exactly one state):
--   retry    a dead, cancelled or completed job: back on its lane with fresh attempts;
--   promote  a scheduled or retrying job: onto its lane now;
--   remove   a finished job (completed, dead, cancelled): its record and index entry;
--   drain    a queued or scheduled job that no worker holds: its record and lane entry.
-- KEYS: events, delayed
-- ARGV[4] action, ARGV[5..] ids
-- Returns per id: 'ok', the state that refused the action, or 'missing'.
local action = ARGV[4]
local ALLOWED = {
  retry = {dead = true, cancelled = true, completed = true},
  promote = {scheduled = true, retrying = true},
  remove = {dead = true, cancelled = true, completed = true},
  drain = {queued = true, scheduled = true, retrying = true},
}
local allowed = ALLOWED[action]
if not allowed then return redis.error_reply('unknown action ' .. tostring(action)) end
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local jkey = job_key(id)
  local h = load_job(id)
  if not h then
    out[#out + 1] = 'missing'
  elseif not allowed[h.state] then
    out[#out + 1] = h.state
  else
    out[#out + 1] = 'ok'
    if action == 'retry' then
      redis.call('PERSIST', jkey)
      if LOGGED[id] then redis.call('PERSIST', log_key(id)) end
      redis.call('ZREM', FINISHED_KEY, id)
      index_state(id, h.state, 'queued', h.name)
      redis.call('HDEL', jkey, 'error', 'reason', 'result', 'finished_at', 'started_at', 'cancel',
        'consumer', 'progress', 'progress_message', 'lost')
      redis.call('HSET', jkey, 'state', 'queued', 'attempt', 1, 'deliveries', 0, 'run_at', NOW,
        'entry', push_lane(id, h.lane, h.spec))
      emit('queued', id, h.name, 1, {'r', 'retried'})
    elseif action == 'promote' then
      redis.call('ZREM', DELAYED_KEY, id)
      redis.call('HSET', jkey, 'state', 'queued', 'run_at', NOW,
        'entry', push_lane(id, h.lane, h.spec))
      emit('queued', id, h.name, h.attempt, {'r', 'promoted'})
    elseif action == 'remove' then
      redis.call('DEL', jkey, log_key(id))
      untag(id, h.tags)
      redis.call('ZREM', FINISHED_KEY, id)
      index_state(id, h.state, nil, h.name)
      emit('removed', id, h.name, h.attempt)
    else
      if h.state == 'queued' and h.entry then redis.call('XDEL', lane_key(h.lane), h.entry) end
      redis.call('ZREM', DELAYED_KEY, id)
      redis.call('DEL', jkey, log_key(id))
      untag(id, h.tags)
      emit('removed', id, h.name, h.attempt, {'r', 'drained'})
    end
  end
end
return out
