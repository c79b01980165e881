-- Commit one run's batch of events atomically: compare-and-set on the run's version,
-- then the new document, its history, the seen event ids, counters and rejected records.
-- KEYS: 1 run, 2 history, 3 seen, 4 tombstone, 5 runs index, 6 stats, 7 rejected
-- ARGV: 1 expected version ('0': the run does not exist), 2 document ('' : unchanged),
--       3 created_at score, 4 run id, 5 retention seconds ('0': the run is still open),
--       6 tombstone value, 7 counts "h,s,c,r", then the history entries, seen ids,
--       counter (field, increment) pairs and rejected records.
local version = redis.call('HGET', KEYS[1], 'v') or '0'
if version ~= ARGV[1] then
  return -1
end
local counts = {}
for n in string.gmatch(ARGV[7], '%d+') do counts[#counts + 1] = tonumber(n) end
local at = 8
local function take(n)
  local first = at
  at = at + n
  return first, at - 1
end
local next_version = tonumber(version)
if ARGV[2] ~= '' then
  next_version = next_version + 1
  redis.call('HSET', KEYS[1], 'v', next_version, 'd', ARGV[2])
  if version == '0' then
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
  end
end
local first, last = take(counts[1])
for i = first, last, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 499, last)))
end
first, last = take(counts[2])
for i = first, last, 500 do
  redis.call('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 499, last)))
end
first, last = take(counts[3] * 2)
for i = first, last, 2 do
  redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1])
end
first, last = take(counts[4])
for i = first, last, 500 do
  redis.call('RPUSH', KEYS[7], unpack(ARGV, i, math.min(i + 499, last)))
end
local retention = tonumber(ARGV[5])
if retention > 0 and ARGV[2] ~= '' then
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[2], retention)
  redis.call('EXPIRE', KEYS[3], retention)
  redis.call('SET', KEYS[4], ARGV[6], 'EX', retention * 2)
end
return next_version
