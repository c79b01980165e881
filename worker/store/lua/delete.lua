-- Delete one run atomically: its document (open steps inside), closed steps and their order,
-- history, seen ids, inbox, held buffer, its members in the runs indexes and its timer,
-- leaving the tombstone so that late events stay stale. Compare-and-set on the run's version, like commit.lua.
-- KEYS: 1 run, 2 history, 3 seen, 4 tombstone, 5 inbox, 6 held, 7 runs index, 8 timers,
--       9 the version counter, 10 ready runs, 11 expiries, 12 the queued-events counter,
--       13 the runs index of the run's account, 14 its closed steps, 15 its steps' order,
--       16 on: the step index keys of the run's steps
-- ARGV: 1 expected version (as read with the document the caller checked), 2 the run's
--       reference (account/run id), 3 timer member, 4 tombstone seconds, 5 tombstone value
-- The run stays in the expiries until its tombstone goes: the sweep then takes its account out
-- of the owners of its run id (lua/prune.lua).
-- Returns the run's new version; 0 when there is no run (any more); -1 when the version moved.
local version = redis.call('HGET', KEYS[1], 'v') or '0'
if version ~= ARGV[1] then
  return -1
end
if redis.call('HEXISTS', KEYS[1], 'd') == 0 then
  return 0
end
local queued = redis.call('LLEN', KEYS[5])
if queued > 0 then
  redis.call('DECRBY', KEYS[12], queued)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], KEYS[14], KEYS[15])
redis.call('ZREM', KEYS[7], ARGV[2])
redis.call('ZREM', KEYS[8], ARGV[3])
redis.call('ZREM', KEYS[10], ARGV[2])
redis.call('ZREM', KEYS[13], ARGV[2])
for i = 16, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then  -- a step id reused by a later run stays its
    redis.call('DEL', KEYS[i])
  end
end
local seconds = tonumber(ARGV[4])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[11], tonumber(t[1]) * 1000 + seconds * 1000, ARGV[2])
redis.call('SET', KEYS[4], ARGV[5], 'EX', seconds)
-- The run hash keeps a new version and no document, as commit.lua leaves a run that is no
-- more: a worker that read the run before this fails its compare-and-set and reads the
-- tombstone, and one that read "no run yet" (version 0) cannot bring the run back.
local next_version = redis.call('INCR', KEYS[9])
redis.call('HSET', KEYS[1], 'v', next_version)
redis.call('PEXPIRE', KEYS[1], seconds * 1000)
return next_version
