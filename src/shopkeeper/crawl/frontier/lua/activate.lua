-- ARGV: G, CSTEM, crawl, active (1/0).
local crawl = ARGV[3]
if ARGV[4] == '1' then
  redis.call('SADD', ACTIVE, crawl)
else
  redis.call('SREM', ACTIVE, crawl)
end
for _, host in ipairs(redis.call('SMEMBERS', ck(crawl, 'hosts'))) do
  recompute(host)
  if ARGV[4] == '1' and redis.call('LLEN', ck(crawl, 'q:' .. host)) > 0 then
    redis.call('SADD', host_crawls(host), crawl)
  end
  schedule(host)
end
if ARGV[4] == '1' then redis.call('PUBLISH', WORK, '1') end
return 1
