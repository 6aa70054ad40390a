-- Shared by every frontier script (prepended to each). ARGV[1] is the global prefix
-- ("<ns>:frontier"), ARGV[2] the crawl prefix stem ("<ns>:{crawl:"); a crawl's keys are
-- "<ns>:{crawl:<id>}:..." so that a crawl lives on one Redis Cluster slot.
local G = ARGV[1]
local CSTEM = ARGV[2]
local READY = G .. ':ready'
local ACTIVE = G .. ':active'
local LEASES = G .. ':leases'
local EXPIRY = G .. ':expiry'
local SEQ = G .. ':seq'
-- Pub/sub channel: a host's queue went from empty to not, or a crawl was activated (a hint for
-- idle workers; see RedisFrontier.watch_work).
local WORK = G .. ':work'

local function host_key(host) return G .. ':host:' .. host end
local function host_crawls(host) return G .. ':hc:' .. host end
local function policies(host) return G .. ':pol:' .. host end
local function ck(crawl, suffix) return CSTEM .. crawl .. '}:' .. suffix end

-- Lua turns numbers into strings with 14 significant digits (0.1 ms on an epoch); keep micros.
local function fmt(x) return string.format('%.6f', x) end

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function ensure_host(host, delay_ms, max_inflight)
  local key = host_key(host)
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'delay_ms', delay_ms, 'max_inflight', max_inflight,
      'in_flight', 0, 'next_start_at', fmt(0), 'paused_until', fmt(0))
  end
end

-- The ready set holds hosts with queued URLs and a free slot, scored by when they may start.
local function schedule(host)
  local h = redis.call('HMGET', host_key(host), 'max_inflight', 'in_flight', 'next_start_at',
    'paused_until')
  if h[1] and redis.call('SCARD', host_crawls(host)) > 0
      and tonumber(h[2]) < tonumber(h[1]) then
    redis.call('ZADD', READY, fmt(math.max(tonumber(h[3]), tonumber(h[4]))), host)
  else
    redis.call('ZREM', READY, host)
  end
end

-- The strictest policy among active crawls having one (unchanged when none is active).
local function recompute(host)
  local all = redis.call('HGETALL', policies(host))
  local delay, inflight = nil, nil
  for i = 1, #all, 2 do
    if redis.call('SISMEMBER', ACTIVE, all[i]) == 1 then
      local d, m = string.match(all[i + 1], '^(%d+):(%d+)$')
      d, m = tonumber(d), tonumber(m)
      if delay == nil or d > delay then delay = d end
      if inflight == nil or m < inflight then inflight = m end
    end
  end
  if delay ~= nil then
    redis.call('HSET', host_key(host), 'delay_ms', delay, 'max_inflight', inflight)
  end
end

-- entry = fingerprint \t depth \t attempts \t url
local function split_entry(entry)
  return string.match(entry, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
end

local function release_slot(host)
  if redis.call('HINCRBY', host_key(host), 'in_flight', -1) < 0 then
    redis.call('HSET', host_key(host), 'in_flight', 0)
  end
end

-- Puts a URL back in its crawl's queue (now or at not_before), or counts it done when the crawl
-- was dropped meanwhile.
local function requeue(crawl, host, entry, not_before, now)
  local counters = ck(crawl, 'n')
  redis.call('HINCRBY', counters, 'leased', -1)
  if redis.call('HGET', counters, 'dropped') then
    redis.call('HINCRBY', counters, 'done', 1)
    return
  end
  redis.call('HINCRBY', counters, 'queued', 1)
  if not_before <= now then
    redis.call('RPUSH', ck(crawl, 'q:' .. host), entry)
    redis.call('SADD', host_crawls(host), crawl)
  else
    redis.call('ZADD', ck(crawl, 'd'), fmt(not_before), host .. '\t' .. entry)
  end
end

-- Takes a live lease out of the lease tables; nil when the token is stale.
local function take_lease(token)
  local record = redis.call('HGET', LEASES, token)
  if not record then return nil end
  redis.call('HDEL', LEASES, token)
  redis.call('ZREM', EXPIRY, token)
  return string.match(record, '^([^\t]*)\t([^\t]*)\t(.*)$')
end
