-- Write what the delivery process's attempts came to, many at once (worker/store/sending.py):
-- one script call rather than a transaction of two to four commands per delivery.
-- KEYS: 1 the ready subscriptions, 2 stats, 3 dead letters.
-- ARGV: 1 retention s (of a delivered or dropped record), 2 a subscription's timers key less
--   its id, 3 a delivery record key less its id, 4 how many outcome counts follow, then per
--   count: stats field, increment; then per result: kind, subscription id, delivery id, record, due ms.
-- Kinds: 'retry' (the record, due again at `due`), 'finish' (delivered or dropped: kept for the
-- retention), 'dead' (kept and listed for replay), 'forget' (a timer whose delivery is gone).
local retention, timers_prefix, record_prefix = ARGV[1], ARGV[2], ARGV[3]
local counts = tonumber(ARGV[4])
for i = 5, 4 + 2 * counts, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
for i = 5 + 2 * counts, #ARGV, 5 do
  local kind, subscription, id, record = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local timers, key = timers_prefix .. subscription, record_prefix .. id
  if kind == 'retry' then
    redis.call('SET', key, record)
    redis.call('ZADD', timers, ARGV[i + 4], id)
    redis.call('ZADD', KEYS[1], 'LT', ARGV[i + 4], subscription)
  else
    redis.call('ZREM', timers, id)  -- its place among the ready is put right by the next claim
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
