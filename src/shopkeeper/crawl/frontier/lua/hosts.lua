-- ARGV: G, CSTEM, crawl. Per host: host, delay, max_inflight, in_flight, next, paused, reason, queued.
local crawl = ARGV[3]
local out = {fmt(clock())}
for _, host in ipairs(redis.call('SMEMBERS', ck(crawl, 'hosts'))) do
  local h = redis.call('HMGET', host_key(host), 'delay_ms', 'max_inflight', 'in_flight',
    'next_start_at', 'paused_until', 'reason')
  out[#out + 1] = host
  for i = 1, 5 do out[#out + 1] = h[i] end
  out[#out + 1] = h[6] or ''
  out[#out + 1] = redis.call('LLEN', ck(crawl, 'q:' .. host))
end
return out
