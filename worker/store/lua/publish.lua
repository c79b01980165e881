-- Append events to their runs' inboxes, mark the runs ready, and say whether a wake-up job
-- must be enqueued (none is queued yet).
-- KEYS: 1 timers, 2 ready, 3 wake flag, 4 queued-events counter, then for each run its inbox
--       and the owners of its run id.
-- ARGV: 1 recover-after ms, 2 wake flag ttl ms, then for each run: its reference (account/run
--       id), its timer member, its account, its event count, its events.
-- The timer of a run with queued events is due at most recover-after from now: if no worker
-- claims the run (a lost wake-up job, a killed worker), the sweep drains it then.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = now + tonumber(ARGV[1])
local at = 3
local queued = 0
for k = 5, #KEYS, 2 do
  local run, member, account, n = ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3])
  at = at + 4
  for i = at, at + n - 1, 500 do
    redis.call('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + 499, at + n - 1)))
  end
  at = at + n
  queued = queued + n
  redis.call('ZADD', KEYS[1], 'LT', due, member)
  redis.call('ZADD', KEYS[2], 'NX', now, run)
  redis.call('SADD', KEYS[k + 1], account)  -- the run id is held by this account from now on
end
redis.call('INCRBY', KEYS[4], queued)
if redis.call('SET', KEYS[3], now, 'NX', 'PX', tonumber(ARGV[2])) then
  return 1
end
return 0
