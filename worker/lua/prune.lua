-- Take finished runs whose keys have expired out of the runs index. A run id that came back
-- as a new run (its key exists again) stays listed: its new commit indexed it again.
-- KEYS: 1 expiries, 2 runs index. ARGV: 1 how many at most, 2 the run key prefix.
-- Returns how many expiries were due (as many as asked: there may be more).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, run_id in ipairs(due) do
  redis.call('ZREM', KEYS[1], run_id)
  if redis.call('HEXISTS', ARGV[2] .. '{' .. run_id .. '}', 'd') == 0 then
    redis.call('ZREM', KEYS[2], run_id)
  end
end
return #due
