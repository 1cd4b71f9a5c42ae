#!lua
-- Takes one of a group's LIMIT slots for a job (a semaphore whose holders expire unless
-- renewed, so a dead worker's slot comes back after its lease).
-- KEYS: the group's holders (zset: job id scored by expiry ms)
-- ARGV[4] job id, ARGV[5] limit, ARGV[6] lease ms
-- Returns {1, 0} when held, or {0, ms until the earliest holder's lease ends}.
local member, limit, lease = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW)
if redis.call('ZSCORE', KEYS[1], member) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], NOW + lease, member)
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - NOW}
