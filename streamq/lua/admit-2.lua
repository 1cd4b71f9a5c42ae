#!lua
-- Admits up to ARGV[4] job starts under a queue's rate limit: a sliding log of the starts
-- admitted in the last window, so no window of that length ever holds more than the limit.
-- KEYS: limit config hash (limit, per_ms), log of admitted starts (zset scored by time)
-- ARGV[4] wanted
-- Returns {admitted, ms until the next start can be admitted (0 when some were admitted)}.
local wanted = tonumber(ARGV[4])
local cfg = redis.call('HMGET', KEYS[1], 'limit', 'per_ms')
if not cfg[1] then return {wanted, 0} end
local limit, per = tonumber(cfg[1]), tonumber(cfg[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', NOW - per)
local free = limit - redis.call('ZCARD', KEYS[2])
if free <= 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local wait = 1
  if oldest[2] then wait = math.max(tonumber(oldest[2]) + per - NOW + 1, 1) end
  return {0, wait}
end
local n = math.min(wanted, free)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', n)
local args = {'ZADD', KEYS[2]}
for i = 0, n - 1 do
  args[#args + 1] = NOW
  args[#args + 1] = seq - i
end
redis.call(unpack(args))
redis.call('PEXPIRE', KEYS[2], per * 2 + 1000)
return {n, 0}
