-- ARGV: G, CSTEM, batch. Expired leases go back to their queues, spending an attempt.
local now = clock()
local expired = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', fmt(now), 'LIMIT', 0,
  tonumber(ARGV[3]))
for _, token in ipairs(expired) do
  local crawl, host, entry = take_lease(token)
  if not crawl then break end
  local fp, depth, attempts, url = split_entry(entry)
  attempts = tostring(tonumber(attempts) + 1)
  requeue(crawl, host, fp .. '\t' .. depth .. '\t' .. attempts .. '\t' .. url, now, now)
  release_slot(host)
  schedule(host)
end
return #expired
