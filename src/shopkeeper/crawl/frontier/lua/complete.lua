-- ARGV: G, CSTEM, tokens joined by ','; answers one character per token: '1' when its lease was
-- live, '0' otherwise (one argument and one reply string instead of one per URL).
local out = {}
for token in string.gmatch(ARGV[3], '[^,]+') do
  local crawl, host = take_lease(token)
  if crawl then
    local counters = ck(crawl, 'n')
    redis.call('HINCRBY', counters, 'leased', -1)
    redis.call('HINCRBY', counters, 'done', 1)
    release_slot(host)
    schedule(host)
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return table.concat(out)
