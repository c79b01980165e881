-- Claim due timers: each due member is pushed back by the lease and returned, so a
-- sweeper that dies while handling one leaves it due again, never lost.
-- KEYS: 1 timers. ARGV: 1 lease ms, 2 how many at most.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
end
return due
