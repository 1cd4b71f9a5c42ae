#!lua flags=allow-oom
-- Deletes dead letters (all, or the given entry ids) and the dead job records they refer to.
-- KEYS: events, dead
-- ARGV[4] batch limit for 'all' mode, ARGV[5] mode ('ids' | 'all'), ARGV[6..] dead entry ids
-- Returns the number purged; 'all' mode purges up to the limit per call.
local entries = select_dead_letters(tonumber(ARGV[4]), ARGV[5], 6)
for _, e in ipairs(entries) do
  local id = e[2][2]
  local st = redis.call('HMGET', job_key(id), 'state', 'tags')
  if st[1] == 'dead' then
    redis.call('DEL', job_key(id), log_key(id))
    untag(id, st[2])
    index_state(id, 'dead', nil, e[2][4])
  end
  redis.call('XDEL', DEAD_KEY, e[1])
end
return #entries
