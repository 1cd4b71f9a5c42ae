#!lua flags=allow-oom
-- Appends a line to a running job's own log (only while the delivery holds its lease) and a
-- `log` event to the queue's events stream. The log is capped: past `max_lines` lines or
-- `max_bytes` bytes the oldest lines are dropped; the record's `logs` field counts every line
-- ever written (so dropped = logs - lines kept) and `log_bytes` the bytes kept.
-- KEYS: events, log
-- ARGV[4] id, ARGV[5] fence, ARGV[6] entry id, ARGV[7] line (JSON), ARGV[8] message (for the
-- event), ARGV[9] max lines, ARGV[10] max bytes
-- Returns 1, or 0 when the delivery no longer holds the job's lease.
-- One reply key per line for 30 s would cost more than what a re-sent call risks (the line
-- written twice), so no reply is kept.
KEEP_REPLY = false
local id = ARGV[4]
local h = holds_lease(id, ARGV[5], ARGV[6], 'name', 'attempt', 'log_bytes')
if not h then return 0 end
local lkey = KEYS[2]
local line = ARGV[7]
local bytes = tonumber(h[3] or '0')
-- A record without a log may share its id with an earlier job whose log has not expired yet.
if not LOGGED[id] then
  redis.call('DEL', lkey)
  bytes = 0
end
local n = redis.call('RPUSH', lkey, line)
bytes = bytes + #line
local max_lines, max_bytes = tonumber(ARGV[9]), tonumber(ARGV[10])
while n > max_lines or (bytes > max_bytes and n > 1) do
  bytes = bytes - #redis.call('LPOP', lkey)
  n = n - 1
end
local jkey = job_key(id)
redis.call('HINCRBY', jkey, 'logs', 1)
redis.call('HSET', jkey, 'log_bytes', bytes)
emit('log', id, h[1], h[2], {'m', ARGV[8]})
return 1
