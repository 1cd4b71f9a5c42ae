#!lua flags=allow-oom
-- Records a running job's progress (only while the delivery holds its lease) and appends a
-- progress event.
-- KEYS: events
-- ARGV[4] id, ARGV[5] fence, ARGV[6] entry id, ARGV[7] percent, ARGV[8] message
-- Returns 1, or 0 when the delivery no longer holds the job's lease.
local id = ARGV[4]
local h = holds_lease(id, ARGV[5], ARGV[6], 'name', 'attempt')
if not h then return 0 end
redis.call('HSET', job_key(id), 'progress', ARGV[7], 'progress_message', ARGV[8])
emit('progress', id, h[1], h[2], {'p', ARGV[7], 'm', ARGV[8]})
return 1
