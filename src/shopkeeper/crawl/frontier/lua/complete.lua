-- ARGV: G, CSTEM, tokens...; answers 1 per token whose lease was live.
local out = {}
for i = 3, #ARGV do
  local crawl, host = take_lease(ARGV[i])
  if crawl then
    local counters = ck(crawl, 'n')
    redis.call('HINCRBY', counters, 'leased', -1)
    redis.call('HINCRBY', counters, 'done', 1)
    release_slot(host)
    schedule(host)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
