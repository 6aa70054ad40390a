-- ARGV: G, CSTEM, token, not_before, spend_attempt (1/0).
local crawl, host, entry = take_lease(ARGV[3])
if not crawl then return 0 end
local fp, depth, attempts, url = split_entry(entry)
if ARGV[5] == '1' then attempts = tostring(tonumber(attempts) + 1) end
requeue(crawl, host, fp .. '\t' .. depth .. '\t' .. attempts .. '\t' .. url, tonumber(ARGV[4]),
  clock())
release_slot(host)
schedule(host)
return 1
