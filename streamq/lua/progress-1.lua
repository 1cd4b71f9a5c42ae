#!lua flags=allow-oom
-- Records a running job's progress (fenced) and appends a progress event.
-- KEYS: events
-- ARGV[4] id, ARGV[5] fence, ARGV[6] percent, ARGV[7] message
-- Returns 1, or 0 when the delivery's token is no longer valid.
local id = ARGV[4]
local h = redis.call('HMGET', job_key(id), 'state', 'fence', 'name', 'attempt')
if h[1] ~= 'active' or tonumber(h[2]) ~= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', job_key(id), 'progress', ARGV[6], 'progress_message', ARGV[7])
emit('progress', id, h[3], h[4], {'p', ARGV[6], 'm', ARGV[7]})
return 1
