-- Claim due timers: each due member is pushed back by the lease and returned with its due
-- time, so a sweeper that dies while handling one leaves it due again, never lost.
-- KEYS: 1 timers. ARGV: 1 lease ms, 2 how many at most.
-- Returns {now ms, member, due ms, member, due ms, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local reply = {now}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), due[i])
  reply[#reply + 1] = due[i]
  reply[#reply + 1] = due[i + 1]
end
return reply
