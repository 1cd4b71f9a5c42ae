#!lua
-- Takes a named lock for a token, with a fencing number that grows with every acquisition.
-- KEYS: lock, fence counter
-- ARGV[4] token, ARGV[5] ttl ms
-- Returns {fence, 0} when taken, or {0, ms until the current holder's lease ends}.
if redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {redis.call('INCR', KEYS[2]), 0}
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = 0 end
return {0, left}
