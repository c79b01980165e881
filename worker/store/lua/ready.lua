-- Claim the runs that have waited longest for a worker, and say whether another wake-up job
-- should be enqueued for what is left (so idle workers join in).
-- KEYS: 1 ready, 2 wake flag. ARGV: 1 most runs, 2 '1' when a wake-up job starts (it consumes
-- the flag), 3 wake flag ttl ms, 4 fewest runs, 5 the share of the waiting runs one claim takes.
-- A claim takes 1/share of what waits, between fewest and most: whole slices while the backlog
-- is long, ever smaller ones as it ends, so that workers draining it together finish together.
-- Returns {another job wanted (0/1), now ms, run id, ready since ms, run id, ...}.
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waiting = redis.call('ZCARD', KEYS[1])
local size = math.min(tonumber(ARGV[1]), math.max(tonumber(ARGV[4]), math.ceil(waiting / tonumber(ARGV[5]))))
local claimed = redis.call('ZPOPMIN', KEYS[1], size)
local wake = 0
if waiting > #claimed / 2 and  -- runs are left (the reply pairs each run with its score)
   redis.call('SET', KEYS[2], now, 'NX', 'PX', tonumber(ARGV[3])) then
  wake = 1
end
local reply = {wake, now}
for i = 1, #claimed do
  reply[#reply + 1] = claimed[i]
end
return reply
