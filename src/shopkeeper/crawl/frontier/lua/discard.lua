-- ARGV: G, CSTEM, crawl, host. This crawl's queued URLs of the host (delayed ones too) -> done.
local crawl, host = ARGV[3], ARGV[4]
local queue = ck(crawl, 'q:' .. host)
local out = redis.call('LRANGE', queue, 0, -1)
redis.call('DEL', queue)
local delayed = ck(crawl, 'd')
for _, member in ipairs(redis.call('ZRANGE', delayed, 0, -1)) do
  local h, entry = string.match(member, '^([^\t]*)\t(.*)$')
  if h == host then
    redis.call('ZREM', delayed, member)
    out[#out + 1] = entry
  end
end
redis.call('SREM', host_crawls(host), crawl)
schedule(host)
local counters = ck(crawl, 'n')
redis.call('HINCRBY', counters, 'queued', -#out)
redis.call('HINCRBY', counters, 'done', #out)
return out
