#!lua flags=allow-oom
-- Releases a lock, only for its owner (compare and delete).
-- KEYS: lock
-- ARGV[4] token
-- Returns 1 if released, 0 if the token did not own it (expired or taken over).
if redis.call('GET', KEYS[1]) == ARGV[4] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
