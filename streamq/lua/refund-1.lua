#!lua
-- Gives back admitted starts that found no job (the newest entries of the log).
-- KEYS: log of admitted starts
-- ARGV[4] how many
redis.call('ZPOPMAX', KEYS[1], tonumber(ARGV[4]))
return 1
