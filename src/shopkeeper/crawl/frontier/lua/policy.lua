-- ARGV: G, CSTEM, crawl, host, delay_ms, max_inflight.
local crawl, host = ARGV[3], ARGV[4]
redis.call('HSET', policies(host), crawl, ARGV[5] .. ':' .. ARGV[6])
redis.call('SADD', ck(crawl, 'hosts'), host)
ensure_host(host, ARGV[5], ARGV[6])
recompute(host)
schedule(host)
return 1
