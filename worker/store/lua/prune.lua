-- Take finished runs whose keys have expired out of the runs indexes (all runs, and their
-- account's), and their account out of the owners of their run id once nothing of the run is
-- left (its tombstone and version go last).
-- KEYS: 1 expiries, 2 runs index. ARGV: 1 how many at most, 2 the run key prefix, 3 the
-- tombstone key prefix, 4 the inbox key prefix, 5 the owners key prefix, 6 an account's runs
-- index key prefix.
-- Returns how many expiries were due (as many as asked: there may be more).
-- A run still there was either kept longer (a late event's commit moved its expiry: wait for
-- that) or came back as a new run with no expiry yet (it is indexed; its own end adds one).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, run in ipairs(due) do  -- each a reference: account/run id
  local tag = '{' .. run .. '}'
  local account = string.match(run, '^[^/]+')
  local key = ARGV[2] .. tag
  local left = redis.call('PTTL', key)
  if redis.call('HEXISTS', key, 'd') == 1 then
    if left > 0 then  -- look again when what is left expires
      redis.call('ZADD', KEYS[1], now + left, run)
    else
      redis.call('ZREM', KEYS[1], run)
    end
  else
    redis.call('ZREM', KEYS[2], run)
    redis.call('ZREM', ARGV[6] .. '{' .. account .. '}', run)
    left = math.max(left, redis.call('PTTL', ARGV[3] .. tag))
    if left > 0 then  -- look again when what is left expires
      redis.call('ZADD', KEYS[1], now + left, run)
    else
      redis.call('ZREM', KEYS[1], run)
      if redis.call('EXISTS', ARGV[4] .. tag) == 0 then  -- queued events bring the run back
        redis.call('SREM', ARGV[5] .. '{' .. string.sub(run, #account + 2) .. '}', account)
      end
    end
  end
end
return #due
