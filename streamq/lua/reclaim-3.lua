#!lua flags=allow-oom
-- Takes back deliveries whose lease expired (their worker died or stalled): XAUTOCLAIM pages
-- through the pending entries idle longer than the shortest lease of the queue; each claimed job
-- is checked against its own lease. Expired ones go to quarantine (see fetch-4) with the old
-- token voided, dead-lettered once they have used up max_deliveries, or finished as cancelled if a
-- cancel was asked for; the rest are handed back to their owner untouched.
-- KEYS: events, stats, dead
-- ARGV[4] reclaimer consumer, ARGV[5] min idle ms, ARGV[6] count, ARGV[7] dead maxlen,
-- ARGV[8] ttl ms for records that end here, ARGV[9] keep_last, then pairs: lane, cursor
-- Returns {next cursors, requeued, dead, cancelled}
local reclaimer, min_idle, count = ARGV[4], ARGV[5], ARGV[6]
local dead_maxlen, ttl, keep_last = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local cursors = {}
local requeued, buried, cancelled = 0, 0, 0
for i = 10, #ARGV, 2 do
  local lane, cursor = ARGV[i], ARGV[i + 1]
  local lkey = lane_key(lane)
  local r = redis.pcall('XAUTOCLAIM', lkey, GROUP, reclaimer, min_idle, cursor, 'COUNT', count,
    'JUSTID')
  if type(r) ~= 'table' or r.err then
    cursors[#cursors + 1] = '0-0'
  else
    cursors[#cursors + 1] = r[1]
    for _, eid in ipairs(r[2]) do
      local entry = redis.call('XRANGE', lkey, eid, eid)
      local id = entry[1] and entry[1][2][2]
      local h = id and load_job(id)
      if h and h.state == 'queued' and h.entry == eid then
        -- A suspect waiting in quarantine keeps its entry pending: leave it there.
        redis.call('ZADD', SUSPECTS_KEY, 'NX', NOW, id)
      elseif not h or h.state ~= 'active' or h.entry ~= eid then
        drop_entry(lane, eid)
      elseif NOW - h.renewed < h.lease_ms then
        -- Still within this job's own (longer) lease: give it back as it was.
        redis.call('XCLAIM', lkey, GROUP, h.consumer, 0, eid, 'IDLE', NOW - h.renewed, 'JUSTID')
      else
        local jkey = job_key(id)
        if h.cancel or h.deliveries >= h.max_deliveries then drop_entry(lane, eid) end
        if h.cancel then
          redis.call('HSET', jkey, 'state', 'cancelled', 'finished_at', NOW)
          redis.call('HDEL', jkey, 'entry', 'consumer')
          index_state(id, 'active', 'cancelled', h.name)
          emit('cancelled', id, h.name, h.attempt)
          retire(id, ttl, keep_last)
          cancelled = cancelled + 1
        elseif h.deliveries >= h.max_deliveries then
          -- A worker that beat after it last renewed this lease lives on: the lease was lost
          -- (not renewed in time), the worker did not die.
          local beat = redis.call('ZSCORE', PREFIX .. 'workers', h.consumer or '')
          local why = 'its worker kept dying or stalling'
          if beat and tonumber(beat) > h.renewed then
            why = 'its last worker was alive but lost the lease (it did not renew it in time)'
          end
          bury(id, h, lane, 'max_deliveries',
            'delivered ' .. h.deliveries .. ' times (max_deliveries ' .. h.max_deliveries ..
            ') without finishing: ' .. why, dead_maxlen)
          retire(id, ttl, keep_last)
          buried = buried + 1
        else
          -- A suspect now (it may be what killed its worker): it waits in quarantine, its
          -- entry still pending, for the next worker with nothing in flight (see fetch-4),
          -- ahead of the backlog rather than behind it.
          redis.call('HINCRBY', jkey, 'lost', 1)
          redis.call('HSET', jkey, 'state', 'queued')
          redis.call('HDEL', jkey, 'consumer')
          redis.call('ZADD', SUSPECTS_KEY, NOW, id)
          emit('reclaimed', id, h.name, h.attempt, {'w', h.consumer or ''})
          emit('queued', id, h.name, h.attempt)
          requeued = requeued + 1
        end
      end
    end
  end
end
if requeued > 0 then redis.call('HINCRBY', STATS_KEY, 'reclaimed', requeued) end
if cancelled > 0 then redis.call('HINCRBY', STATS_KEY, 'cancelled', cancelled) end
-- A sweep that took nothing back answers a re-send the same without keeping its reply.
KEEP_REPLY = requeued + buried + cancelled > 0
return {cursors, requeued, buried, cancelled}
