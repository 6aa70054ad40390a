-- ARGV: G, CSTEM, limit, lease_seconds, worker, only ('' or one crawl id).
-- Reserves each ready host's start slot and leases its URLs in one atomic step. With `only`,
-- that crawl's URLs alone, active or not (a crawl its own client leases), on its hosts.
local limit = tonumber(ARGV[3])
local lease_seconds = tonumber(ARGV[4])
local only = ARGV[6] or ''
local now = clock()
local expires = fmt(now + lease_seconds)

local crawls
if only == '' then crawls = redis.call('SMEMBERS', ACTIVE) else crawls = {only} end
-- Retries whose not_before has come go back to their host queues.
for _, crawl in ipairs(crawls) do
  local delayed = ck(crawl, 'd')
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', fmt(now), 'LIMIT', 0, 1000)
  for _, member in ipairs(due) do
    local host, entry = string.match(member, '^([^\t]*)\t(.*)$')
    redis.call('ZREM', delayed, member)
    redis.call('RPUSH', ck(crawl, 'q:' .. host), entry)
    redis.call('SADD', host_crawls(host), crawl)
    schedule(host)
  end
end

-- One line per lease (crawl \t token \t host \t entry), all in one reply string: a client
-- parses one bulk string instead of four per URL. Canonical URLs hold no tab or newline.
local out = {}
local leased = 0
local candidates
if only == '' then
  candidates = redis.call('ZRANGEBYSCORE', READY, '-inf', fmt(now), 'LIMIT', 0, limit + 64)
else
  candidates = {}
  for _, host in ipairs(redis.call('SMEMBERS', ck(only, 'hosts'))) do
    if redis.call('LLEN', ck(only, 'q:' .. host)) > 0 then candidates[#candidates + 1] = host end
  end
end
for _, host in ipairs(candidates) do
  if leased >= limit then break end
  local key = host_key(host)
  local h = redis.call('HMGET', key, 'delay_ms', 'max_inflight', 'in_flight', 'next_start_at',
    'paused_until')
  local delay, max_inflight, in_flight = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
  local free = max_inflight - in_flight
  if tonumber(h[4]) > now or tonumber(h[5]) > now or free <= 0 then
    schedule(host)  -- a stale score: put it where it belongs
  else
    local want = 1
    if delay == 0 then want = math.min(free, limit - leased) end
    local got = 0
    local active_work = false
    local host_work
    if only == '' then host_work = redis.call('SMEMBERS', host_crawls(host)) else host_work = {only} end
    for _, crawl in ipairs(host_work) do
      if got >= want then break end
      if only ~= '' or redis.call('SISMEMBER', ACTIVE, crawl) == 1 then
        local queue = ck(crawl, 'q:' .. host)
        local counters = ck(crawl, 'n')
        while got < want do
          local entry = redis.call('LPOP', queue)
          if not entry then
            redis.call('SREM', host_crawls(host), crawl)
            break
          end
          active_work = true
          local token = tostring(redis.call('INCR', SEQ))
          redis.call('HSET', LEASES, token, crawl .. '\t' .. host .. '\t' .. entry)
          redis.call('ZADD', EXPIRY, expires, token)
          redis.call('HINCRBY', counters, 'queued', -1)
          redis.call('HINCRBY', counters, 'leased', 1)
          got = got + 1
          out[#out + 1] = crawl .. '\t' .. token .. '\t' .. host .. '\t' .. entry
        end
      end
    end
    if got > 0 then
      redis.call('HSET', key, 'in_flight', in_flight + got,
        'next_start_at', fmt(now + delay / 1000))
      leased = leased + got
      schedule(host)
    elseif not active_work and only == '' then
      -- Only inactive crawls have URLs here: activating one schedules the host again.
      redis.call('ZREM', READY, host)
    end
  end
end
return {fmt(now), expires, table.concat(out, '\n')}
