-- ARGV: G, CSTEM, host, until, reason. A pause is never shortened.
local host = ARGV[3]
ensure_host(host, 1000, 1)
local key = host_key(host)
if tonumber(ARGV[4]) > tonumber(redis.call('HGET', key, 'paused_until')) then
  redis.call('HSET', key, 'paused_until', fmt(tonumber(ARGV[4])), 'reason', ARGV[5])
  if redis.call('ZSCORE', READY, host) then schedule(host) end
end
return 1
