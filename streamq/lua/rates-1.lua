#!lua flags=no-writes
-- Counts a queue's events by type over the last window of its events stream, by Redis's
-- clock, examining at most SAMPLE entries (newest first): the read model's rates, counted
-- where the entries are instead of shipped to the reader. Reads only.
-- KEYS: events
-- ARGV[4] end of the window in ms ('' = now), ARGV[5] window ms, ARGV[6] sample,
-- ARGV[7..] the event types to count
-- Returns {end ms, entries examined, ms of the last one examined (0 = none), count per type
--   in the order given}.
local stop = tonumber(ARGV[4]) or NOW
local start = stop - tonumber(ARGV[5])
local sample = tonumber(ARGV[6])
local counts, slot = {}, {}
for i = 7, #ARGV do
  counts[i - 6] = 0
  slot[ARGV[i]] = i - 6
end
local BATCH = 1000
local maxid, seen, last_ms = '+', 0, 0
while seen < sample do
  local entries = redis.call('XREVRANGE', KEYS[1], maxid, start, 'COUNT', math.min(BATCH, sample - seen))
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    local f = e[2]
    for k = 1, #f, 2 do
      if f[k] == 't' then
        local s = slot[f[k + 1]]
        if s then counts[s] = counts[s] + 1 end
        break
      end
    end
  end
  seen = seen + #entries
  local eid = entries[#entries][1]
  last_ms = tonumber(string.match(eid, '^(%d+)'))
  maxid = '(' .. eid
  if #entries < BATCH then break end
end
local out = {stop, seen, last_ms}
for i = 1, #counts do out[#out + 1] = counts[i] end
return out
