#!lua flags=allow-oom
-- Pauses (ARGV[4] = '1') or resumes (ARGV[4] = '0') a queue and says so in its events.
-- KEYS: events, paused
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], NOW)
  emit('paused', '', '', 0)
else
  redis.call('DEL', KEYS[2])
  emit('resumed', '', '', 0)
end
return 1
