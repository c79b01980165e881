-- Take finished runs whose keys have expired out of the runs index.
-- KEYS: 1 expiries, 2 runs index. ARGV: 1 how many at most, 2 the run key prefix.
-- Returns how many expiries were due (as many as asked: there may be more).
-- A run still there was either kept longer (a late event's commit moved its expiry: wait for
-- that) or came back as a new run with no expiry yet (it is indexed; its own end adds one).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, run_id in ipairs(due) do
  local key = ARGV[2] .. '{' .. run_id .. '}'
  local left = redis.call('PTTL', key)
  if redis.call('HEXISTS', key, 'd') == 0 then
    redis.call('ZREM', KEYS[1], run_id)
    redis.call('ZREM', KEYS[2], run_id)
  elseif left > 0 then
    redis.call('ZADD', KEYS[1], now + left, run_id)
  else
    redis.call('ZREM', KEYS[1], run_id)
  end
end
return #due
