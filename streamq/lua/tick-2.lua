#!lua
-- Records the newest tick a recurring job has fired (only ever forward) and the id of the job
-- it fired, so every scheduler process continues from the same point.
-- KEYS: last tick per schedule (hash), last job per schedule (hash)
-- ARGV[4] schedule id, ARGV[5] tick ms, ARGV[6] job id ('' = none fired)
-- Returns 1 if the tick moved forward, 0 if another scheduler was there first.
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '-1')
local tick = tonumber(ARGV[5])
if tick < cur then return 0 end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[6]) end
if tick == cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
return 1
