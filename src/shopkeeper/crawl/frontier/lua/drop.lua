-- ARGV: G, CSTEM, crawl. Deactivates the crawl and forgets its queued URLs (seen sets stay).
local crawl = ARGV[3]
redis.call('SREM', ACTIVE, crawl)
for _, host in ipairs(redis.call('SMEMBERS', ck(crawl, 'hosts'))) do
  redis.call('DEL', ck(crawl, 'q:' .. host))
  redis.call('SREM', host_crawls(host), crawl)
  recompute(host)
  schedule(host)
end
redis.call('DEL', ck(crawl, 'd'))
local counters = ck(crawl, 'n')
local queued = tonumber(redis.call('HGET', counters, 'queued') or '0')
redis.call('HINCRBY', counters, 'done', queued)
redis.call('HSET', counters, 'queued', 0, 'dropped', 1)
return 1
