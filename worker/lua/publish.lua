-- Append events to their runs' inboxes and make sure a worker will look at each run.
-- KEYS: 1 timers, then one inbox per run.
-- ARGV: 1 recover-after ms, then for each run: its timer member, its event count, its events.
-- The timer of a run with queued events is due at most recover-after from now: if the
-- queued job that names the run is lost (a killed worker), the sweep drains it then.
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local at = 2
for k = 2, #KEYS do
  local member = ARGV[at]
  local n = tonumber(ARGV[at + 1])
  at = at + 2
  for i = at, at + n - 1, 500 do
    redis.call('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + 499, at + n - 1)))
  end
  at = at + n
  redis.call('ZADD', KEYS[1], 'LT', due, member)
end
return #KEYS - 1
