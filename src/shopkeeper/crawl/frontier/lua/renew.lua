-- ARGV: G, CSTEM, lease_seconds, tokens...
local expires = fmt(clock() + tonumber(ARGV[3]))
local out = {expires}
for i = 4, #ARGV do
  if redis.call('HEXISTS', LEASES, ARGV[i]) == 1 then
    redis.call('ZADD', EXPIRY, expires, ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
