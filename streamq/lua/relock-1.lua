#!lua
-- Extends a lock's lease, only for its owner.
-- KEYS: lock
-- ARGV[4] token, ARGV[5] ttl ms
-- Returns 1 if extended, 0 if the token no longer owns the lock.
if redis.call('GET', KEYS[1]) == ARGV[4] then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
