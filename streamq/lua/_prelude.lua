-- Shared helpers, inserted by streamq/_scripts.py after each script's shebang line.
-- Key layout mirrors streamq/_keys.py: every key of a queue starts with PREFIX ("sq:{queue}:").
local PREFIX = ARGV[1]
local GROUP = ARGV[2]
local EVENTS_MAXLEN = ARGV[3]
local _t = redis.call('TIME')
local NOW = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)

local function job_key(id) return PREFIX .. 'job:' .. id end
local function lane_key(lane) return PREFIX .. 'lane:' .. lane end
-- A job's own log (see log-2): expired with its record by retire(), deleted with it everywhere
-- a record is deleted (one DEL of both keys).
local function log_key(id) return PREFIX .. 'log:' .. id end
-- Jobs read in this call whose records say they have a log ('logs' field), so retire() expires
-- the log with the record without asking Redis about jobs that never logged.
local LOGGED = {}
-- Tags (see tag-1): the record's 'tags' field lists them, one a line; each has a zset of its
-- jobs, ix:tag:<tag>, and ix:tags lists the tags in use. untag() takes a deleted record's
-- entries out of its tags' sets.
local TAGS_KEY = PREFIX .. 'ix:tags'
local function tag_key(tag) return PREFIX .. 'ix:tag:' .. tag end
local function untag(id, tags)
  if not tags or tags == '' then return end
  for tag in string.gmatch(tags, '[^\n]+') do redis.call('ZREM', tag_key(tag), id) end
end
local EVENTS_KEY = PREFIX .. 'events'
local STATS_KEY = PREFIX .. 'stats'
local DELAYED_KEY = PREFIX .. 'delayed'
local DEAD_KEY = PREFIX .. 'dead'
local FINISHED_KEY = PREFIX .. 'finished'
-- Suspects (jobs whose worker died with them) waiting to run alone; see fetch-4.
local SUSPECTS_KEY = PREFIX .. 'suspects'

-- The job index (see streamq/_index.py). Waiting and running jobs are found where they already
-- are (lane streams, the delayed set); only the states no other key lists are indexed here,
-- in one zset per state and job name, scored by the ms the job entered the state:
-- ix:<state>:<name>; ix:names holds the names seen.
local IX = PREFIX .. 'ix:'
local INDEXED = {completed = true, dead = true, cancelled = true, ['waiting-children'] = true}

-- The set index_state last put a job in, for retire() to sweep; names recorded by this call.
local indexed_now = {}
local named = {}

-- Moves a job's index entry from state `from` to state `to` (either may be unindexed or nil).
local function index_state(id, from, to, name)
  if INDEXED[from] then redis.call('ZREM', IX .. from .. ':' .. name, id) end
  if not INDEXED[to] then return end
  local key = IX .. to .. ':' .. name
  redis.call('ZADD', key, NOW, id)
  if not named[name] then
    redis.call('SADD', IX .. 'names', name)
    named[name] = true
  end
  indexed_now = {id = id, key = key}
end

-- As a record gets an age limit, drops (once per call and set) up to 64 entries of its index
-- set that got there at least that long ago and whose records are gone: jobs of one name and
-- state mostly share their age limit, so the set stays as long as the records (a listing
-- drops any stale id it meets, should longer-lived records hold the window).
local swept = {}
local function sweep_index(id, ttl_ms)
  if indexed_now.id ~= id or swept[indexed_now.key] then return end
  local key = indexed_now.key
  swept[key] = true
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', NOW - ttl_ms, 'LIMIT', 0, 64)) do
    if redis.call('EXISTS', job_key(old)) == 0 then redis.call('ZREM', key, old) end
  end
end

local _groups = {}
local function ensure_group(lkey)
  if _groups[lkey] then return end
  if redis.call('EXISTS', lkey) == 0 then
    redis.call('XGROUP', 'CREATE', lkey, GROUP, '0', 'MKSTREAM')
  end
  _groups[lkey] = true
end

-- Appends one event; extra is a flat list of field, value pairs.
local function emit(etype, id, name, attempt, extra)
  local args = {'XADD', EVENTS_KEY, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
                't', etype, 'j', id, 'n', name or '', 'a', attempt or 0}
  if extra then
    for k = 1, #extra do args[#args + 1] = extra[k] end
  end
  return redis.call(unpack(args))
end

-- Puts a job's entry (back) on its lane; returns the new entry id.
local function push_lane(id, lane, spec)
  local lkey = lane_key(lane)
  ensure_group(lkey)
  return redis.call('XADD', lkey, '*', 'id', id, 'spec', spec)
end

local function drop_entry(lane, eid)
  local lkey = lane_key(lane)
  redis.call('XACK', lkey, GROUP, eid)
  redis.call('XDEL', lkey, eid)
end

-- Finished records expire by age; with keep_last > 0 only the newest keep_last are kept too.
local function retire(id, ttl_ms, keep_last)
  local jkey = job_key(id)
  if ttl_ms > 0 then
    redis.call('PEXPIRE', jkey, ttl_ms)
    if LOGGED[id] then redis.call('PEXPIRE', log_key(id), ttl_ms) end
    sweep_index(id, ttl_ms)
  end
  if keep_last > 0 then
    redis.call('ZADD', FINISHED_KEY, NOW, id)
    local excess = redis.call('ZCARD', FINISHED_KEY) - keep_last
    if excess > 0 then
      local old = redis.call('ZRANGE', FINISHED_KEY, 0, excess - 1)
      for _, oid in ipairs(old) do
        local o = redis.call('HMGET', job_key(oid), 'state', 'name', 'tags')
        if o[1] == 'completed' or o[1] == 'dead' or o[1] == 'cancelled' then
          redis.call('DEL', job_key(oid), log_key(oid))
          index_state(oid, o[1], nil, o[2])
          untag(oid, o[3])
        end
      end
      redis.call('ZREMRANGEBYRANK', FINISHED_KEY, 0, excess - 1)
    end
  end
end

local function is_terminal(state)
  return state == 'completed' or state == 'dead' or state == 'cancelled'
end

-- A job goes to the dead-letter stream carrying everything needed to replay it.
local function bury(id, h, lane, reason, err, dead_maxlen)
  redis.call('XADD', DEAD_KEY, 'MAXLEN', '~', dead_maxlen, '*',
    'id', id, 'name', h.name, 'lane', lane, 'spec', h.spec, 'reason', reason, 'error', err,
    'attempt', h.attempt, 'max_attempts', h.max_attempts, 'lease_ms', h.lease_ms,
    'max_deliveries', h.max_deliveries)
  redis.call('HSET', job_key(id), 'state', 'dead', 'error', err, 'reason', reason,
    'finished_at', NOW)
  redis.call('HDEL', job_key(id), 'entry', 'consumer')
  index_state(id, h.state, 'dead', h.name)
  emit('dead', id, h.name, h.attempt, {'e', err, 'r', reason})
  redis.call('HINCRBY', STATS_KEY, 'dead', 1)
end

-- Whether a delivery (entry id, fencing token) still holds the job's lease: the job is active
-- under that very token and entry. Returns the job's `...` fields when it does, else nil.
local function holds_lease(id, fence, eid, ...)
  local v = redis.call('HMGET', job_key(id), 'state', 'fence', 'entry', 'logs', ...)
  if v[1] ~= 'active' or tonumber(v[2]) ~= tonumber(fence) or v[3] ~= eid then return nil end
  if v[4] then LOGGED[id] = true end
  local fields = {}
  for k = 5, #v do fields[#fields + 1] = v[k] end
  return fields
end

-- A job as enqueue-3 and flow-3 take it: 10 ARGV values from index i.
local function job_args(i)
  return {id = ARGV[i], name = ARGV[i + 1], lane = ARGV[i + 2], spec = ARGV[i + 3],
    delay_ms = tonumber(ARGV[i + 4]), max_attempts = ARGV[i + 5], lease_ms = ARGV[i + 6],
    max_deliveries = ARGV[i + 7], dedup_ms = ARGV[i + 8], parent = ARGV[i + 9]}
end

-- Writes a new job record (attempt 1, never delivered) in `state`; j holds name, lane, spec,
-- max_attempts, lease_ms, max_deliveries, dedup_ms, and optionally run_at (default now),
-- entry, first_event, parent and replayed_from.
local function new_job(id, state, j)
  local args = {'HSET', job_key(id), 'state', state, 'name', j.name, 'lane', j.lane,
    'spec', j.spec, 'attempt', 1, 'max_attempts', j.max_attempts, 'lease_ms', j.lease_ms,
    'max_deliveries', j.max_deliveries, 'dedup_ms', j.dedup_ms, 'created_at', NOW,
    'run_at', j.run_at or NOW, 'fence', 0, 'deliveries', 0}
  for _, field in ipairs({'entry', 'first_event', 'parent', 'replayed_from'}) do
    if j[field] then
      args[#args + 1] = field
      args[#args + 1] = j[field]
    end
  end
  redis.call(unpack(args))
  index_state(id, nil, state, j.name)
end

local function load_job(id)
  local v = redis.call('HMGET', job_key(id), 'state', 'name', 'spec', 'attempt', 'max_attempts',
    'lease_ms', 'max_deliveries', 'fence', 'deliveries', 'lane', 'entry', 'cancel', 'renewed',
    'consumer', 'logs', 'tags')
  if not v[1] then return nil end
  if v[15] then LOGGED[id] = true end
  return {state = v[1], name = v[2], spec = v[3], attempt = tonumber(v[4]),
    max_attempts = tonumber(v[5]), lease_ms = tonumber(v[6]), max_deliveries = tonumber(v[7]),
    fence = tonumber(v[8]), deliveries = tonumber(v[9]), lane = v[10], entry = v[11],
    cancel = v[12], renewed = tonumber(v[13] or '0'), consumer = v[14], tags = v[16]}
end

-- Dead letters to act on: the oldest `limit` ('all' mode) or the entry ids in ARGV[first..].
local function select_dead_letters(limit, mode, first)
  if mode == 'all' then
    return redis.call('XRANGE', DEAD_KEY, '-', '+', 'COUNT', limit)
  end
  local entries = {}
  for i = first, #ARGV do
    local e = redis.call('XRANGE', DEAD_KEY, ARGV[i], ARGV[i])
    if e[1] then entries[#entries + 1] = e[1] end
  end
  return entries
end

-- A call that names a reply key (the key after the script's own, see streamq/_scripts.py) runs
-- once: the client re-sends a script whose reply it lost, and the re-sent call gets the first
-- run's reply and changes nothing. Kept for longer than the client's re-sends take (seconds).
-- A script whose run changed nothing a re-run would change again (an idle fetch, a renewal)
-- sets KEEP_REPLY = false, so idle workers leave no keys behind.
local REPLY_TTL_MS = 30000
local KEEP_REPLY = true
local function run_once(reply_key, body)
  if not reply_key then return body() end
  local first = redis.call('GET', reply_key)
  if first then return cmsgpack.unpack(first) end
  local reply = body()
  if KEEP_REPLY then redis.call('SET', reply_key, cmsgpack.pack(reply), 'PX', REPLY_TTL_MS) end
  return reply
end
