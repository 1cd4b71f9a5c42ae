#!lua flags=allow-oom
-- Tags jobs: each tag gets the job in its set ix:tag:<tag>, scored by the job's creation ms,
-- and the record's 'tags' field lists its tags (so whatever deletes the record takes it out
-- of those sets, see untag() in the prelude). A job whose record is gone is left alone. Each
-- tag set touched drops its oldest entries whose records have expired (up to 16, stopping at
-- the first live one), and ix:tags (tag -> last use ms) its least recently used tags whose
-- sets are gone, so both stay about as large as what is live.
-- KEYS: events
-- ARGV[4..]: per job: id, number of tags n, then n tags
-- Returns the number of jobs tagged.
local tagged = 0
local seen = {}
local i = 4
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local jkey = job_key(id)
  local h = redis.call('HMGET', jkey, 'created_at', 'tags')
  if h[1] then
    local have = {}
    local lines = {}
    if h[2] then
      for tag in string.gmatch(h[2], '[^\n]+') do
        have[tag] = true
        lines[#lines + 1] = tag
      end
    end
    for k = 1, n do
      local tag = ARGV[i + 1 + k]
      if not have[tag] then
        have[tag] = true
        lines[#lines + 1] = tag
        redis.call('ZADD', tag_key(tag), h[1], id)
        if not seen[tag] then
          seen[tag] = true
          redis.call('ZADD', TAGS_KEY, NOW, tag)
          local key = tag_key(tag)
          -- Oldest first: the first live record ends the sweep (usually at once).
          for _, old in ipairs(redis.call('ZRANGE', key, 0, 15)) do
            if redis.call('EXISTS', job_key(old)) == 1 then break end
            redis.call('ZREM', key, old)
          end
        end
      end
    end
    redis.call('HSET', jkey, 'tags', table.concat(lines, '\n'))
    tagged = tagged + 1
  end
  i = i + 2 + n
end
for _, tag in ipairs(redis.call('ZRANGE', TAGS_KEY, 0, 15)) do
  if redis.call('EXISTS', tag_key(tag)) == 1 then break end
  redis.call('ZREM', TAGS_KEY, tag)
end
return tagged
