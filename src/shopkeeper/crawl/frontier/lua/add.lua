-- ARGV: G, CSTEM, crawl, then (bucket, fingerprint, host, entry) per URL.
-- Exact dedup: the fingerprint goes into an integer-set bucket keyed by its top 16 bits.
local crawl = ARGV[3]
local added = 0
local touched = {}
local started = false
local hosts = ck(crawl, 'hosts')
for i = 4, #ARGV, 4 do
  local host = ARGV[i + 2]
  if redis.call('SADD', ck(crawl, 's:' .. ARGV[i]), ARGV[i + 1]) == 1 then
    if redis.call('RPUSH', ck(crawl, 'q:' .. host), ARGV[i + 3]) == 1 then started = true end
    added = added + 1
    touched[host] = true
  end
end
if added > 0 then
  redis.call('HINCRBY', ck(crawl, 'n'), 'seen', added)
  redis.call('HINCRBY', ck(crawl, 'n'), 'queued', added)
end
local active = redis.call('SISMEMBER', ACTIVE, crawl) == 1
for host, _ in pairs(touched) do
  redis.call('SADD', hosts, host)
  ensure_host(host, 1000, 1)
  redis.call('SADD', host_crawls(host), crawl)
  if active then schedule(host) end
end
if started and active then redis.call('PUBLISH', WORK, '1') end
return added
