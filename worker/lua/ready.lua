-- Claim the runs that have waited longest for a worker, and say whether another wake-up job
-- should be enqueued for what is left (so idle workers join in).
-- KEYS: 1 ready, 2 wake flag. ARGV: 1 how many runs, 2 '1' when a wake-up job starts (it
-- consumes the flag), 3 wake flag ttl ms.
-- Returns {another job wanted (0/1), now ms, run id, ready since ms, run id, ...}.
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[1]))
local wake = 0
if redis.call('ZCARD', KEYS[1]) > 0 and redis.call('SET', KEYS[2], now, 'NX', 'PX', tonumber(ARGV[3])) then
  wake = 1
end
local reply = {wake, now}
for i = 1, #claimed do
  reply[#reply + 1] = claimed[i]
end
return reply
