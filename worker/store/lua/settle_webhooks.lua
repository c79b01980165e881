-- Write what the delivery process's attempts came to, many at once (worker/store/sending.py):
-- one script call rather than a transaction of two to four commands per delivery.
-- KEYS: 1 webhook timers, 2 stats, 3 dead letters.
-- ARGV: 1 retention s (of a delivered or dropped record), 2 timer member prefix,
--   3 delivery record key prefix, 4 how many outcome counts follow,
--   then per count: stats field, increment; then per result: kind, delivery id, record, due ms.
-- Kinds: 'retry' (the record, due again at `due`), 'finish' (delivered or dropped: kept for the
-- retention), 'dead' (kept and listed for replay), 'forget' (a timer whose delivery is gone).
local retention, timer_prefix, record_prefix = ARGV[1], ARGV[2], ARGV[3]
local counts = tonumber(ARGV[4])
for i = 5, 4 + 2 * counts, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
for i = 5 + 2 * counts, #ARGV, 4 do
  local kind, id, record = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local timer, key = timer_prefix .. id, record_prefix .. id
  if kind == 'retry' then
    redis.call('SET', key, record)
    redis.call('ZADD', KEYS[1], ARGV[i + 3], timer)
  else
    redis.call('ZREM', KEYS[1], timer)
    if kind == 'finish' then
      redis.call('SET', key, record, 'EX', retention)
    elseif kind == 'dead' then
      redis.call('SET', key, record)
      redis.call('LREM', KEYS[3], 0, id)
      redis.call('RPUSH', KEYS[3], id)
    end
  end
end
return 1
