#!lua flags=allow-oom
-- One bounded batch of deleting a queue: takes up to `count` jobs off one of the queue's
-- sources (a zset of ids, or a stream whose entries carry an `id` field) and deletes each
-- one's record, log, trace context and flow bookkeeping. Taking them off the source (ZPOPMIN,
-- XDEL) makes a deletion resumable and skips nothing however the source changes meanwhile.
-- UNLINK frees the memory off the main thread.
-- KEYS: events, the source
-- ARGV[4] kind ('zset' | 'stream'), ARGV[5] count
-- Returns {items taken off the source, job records deleted}.
KEEP_REPLY = false  -- a re-sent call deletes the next batch: nothing to keep
local src, kind, count = KEYS[2], ARGV[4], tonumber(ARGV[5])
local ids = {}
local taken = 0
if kind == 'zset' then
  local popped = redis.call('ZPOPMIN', src, count)
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  taken = #ids
else
  local entries = redis.call('XRANGE', src, '-', '+', 'COUNT', count)
  local eids = {}
  for _, e in ipairs(entries) do
    eids[#eids + 1] = e[1]
    local f = e[2]
    for k = 1, #f, 2 do
      if f[k] == 'id' then
        ids[#ids + 1] = f[k + 1]
        break
      end
    end
  end
  if #eids > 0 then redis.call('XDEL', src, unpack(eids)) end
  taken = #eids
end
local removed = 0
for _, id in ipairs(ids) do
  removed = removed + redis.call('UNLINK', job_key(id))
  local fkey = PREFIX .. 'flow:' .. id
  redis.call('UNLINK', log_key(id), PREFIX .. 'trace:' .. id, fkey, fkey .. ':children',
    fkey .. ':done', fkey .. ':failed')
end
return {taken, removed}
