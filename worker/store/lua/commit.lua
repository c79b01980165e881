-- Commit one run's drained events atomically: compare-and-set on the run's version,
-- then the new document (the run and its open steps), the steps it closed, its history, the
-- seen event ids, counters, rejected records, the sequence buffer, the inbox entries
-- consumed and the run's next timer.
-- KEYS  1 run               the run's hash: version 'v', document 'd'
-- KEYS  2 history           the run's transitions, one JSON object an entry
-- KEYS  3 seen              the event ids the run has processed
-- KEYS  4 tombstone         what a finished run leaves once its keys expire
-- KEYS  5 runs              the runs index of all accounts (score: created_at)
-- KEYS  6 stats             the outcome counters
-- KEYS  7 rejected          the rejected records
-- KEYS  8 inbox             the run's queued events
-- KEYS  9 held              the run's sequence buffer
-- KEYS 10 timers            the timer index
-- KEYS 11 webhook_ready     the subscriptions with deliveries waiting, by earliest timer
-- KEYS 12 versions          the one version counter
-- KEYS 13 expiries          when finished runs' keys expire
-- KEYS 14 queued            the queued-events counter
-- KEYS 15 account_runs      the runs index of the run's account (score: created_at)
-- KEYS 16 steps             the run's closed steps: a hash, step id -> Step JSON
-- KEYS 17 step_order        the run's step ids in creation order, each ended by a newline
-- ARGV  1 expected_version  the version read ('0': the run does not exist)
-- ARGV  2 document          the new document ('': unchanged)
-- ARGV  3 created_at        the run's score in the runs indexes
-- ARGV  4 member            the run's reference (account/run id) in the runs indexes
-- ARGV  5 finished          '1': the run has finished, its keys expire after the retention
-- ARGV  6 tombstone         the tombstone's value (the final status)
-- ARGV  7 counts            "rejected,deliveries,closed": how many of each follow ARGV 23
-- ARGV  8 consumed          inbox entries applied, from its head
-- ARGV  9 held              the sequence buffer ('': empty)
-- ARGV 10 timer             the run's member in the timer index
-- ARGV 11 next_due          the run's next timer, ms ('': none)
-- ARGV 12 recover_after_ms  how soon a run with queued events is looked at again
-- ARGV 13 retention         seconds a finished run's keys are kept (its tombstone twice as long)
-- ARGV 14 history           the new history entries, one JSON object a line ('': none)
-- ARGV 15 seen              the new seen ids as a JSON array ('': none)
-- ARGV 16 counters          the counters as a JSON object {field: increment} ('': none)
-- ARGV 17 read              what the drain read: 'D' a document, 'H' a held buffer (the
--                           version vouches that both are as read)
-- ARGV 18 now               the drain's time (ms, Redis TIME when it loaded the run)
-- ARGV 19 created           the ids of the steps this commit created, in order, one a line
--                           ('': none)
-- ARGV 20 delivery_prefix   a delivery record's key, less its delivery id
-- ARGV 21 webhook_timers    a subscription's delivery timers' key, less its subscription id
-- ARGV 22 index_before      a step index key before its step id (see the end of this script)
-- ARGV 23 index_after       ... and after it
-- then the rejected records, the (delivery id, subscription id, record) triples of the
-- webhook deliveries (the outbox), and the (step id, Step JSON) pairs of the steps it closed.
-- `worker/store/commit.py` packs these by name (a test holds it against this header).
-- Few arguments and few calls: the worker pays per argument, Redis per call.
local version = redis.call('HGET', KEYS[1], 'v') or '0'
if version ~= ARGV[1] then
  return -1
end
local had_document = string.find(ARGV[17], 'D', 1, true) ~= nil
local had_held = string.find(ARGV[17], 'H', 1, true) ~= nil
local now = tonumber(ARGV[18])
local counts = {}
for n in string.gmatch(ARGV[7], '%d+') do counts[#counts + 1] = tonumber(n) end
local at = 24
local function take(n)
  local first = at
  at = at + n
  return first, at - 1
end
-- Every commit moves the version on, even one that only consumed duplicates: a second
-- drain that read the same inbox head must fail its compare-and-set, not trim again.
-- Versions come from one counter, so none is ever reused: a run whose keys expired and
-- came back cannot meet a stale writer's old version again. (A writer that read "no run
-- yet" and stalled past the run's whole life, tombstone included, would create it anew:
-- as the same events published then would.)
local next_version = redis.call('INCR', KEYS[12])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'v', next_version, 'd', ARGV[2])
  if not had_document then
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
    redis.call('ZADD', KEYS[15], ARGV[3], ARGV[4])  -- so an account's listing reads only its runs
    if version ~= '0' then
      redis.call('PERSIST', KEYS[1])  -- it was a version kept alone, with a TTL
    end
  end
else
  redis.call('HSET', KEYS[1], 'v', next_version)
  if not had_document then
    -- no run (yet, or any more): the version counter alone, kept as long as a tombstone
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[13]) * 2000)
  end
end
-- `command key` with every item of a Lua list, 500 at a time (unpack has a stack limit)
local function all(command, key, items)
  for i = 1, #items, 500 do
    redis.call(command, key, unpack(items, i, math.min(i + 499, #items)))
  end
end
if ARGV[14] ~= '' then
  local entries = {}
  for entry in string.gmatch(ARGV[14], '[^\n]+') do entries[#entries + 1] = entry end
  all('RPUSH', KEYS[2], entries)
end
if ARGV[15] ~= '' then
  all('SADD', KEYS[3], cjson.decode(ARGV[15]))
end
if ARGV[16] ~= '' then
  for name, increment in pairs(cjson.decode(ARGV[16])) do
    redis.call('HINCRBY', KEYS[6], name, increment)
  end
end
local first, last = take(counts[1])
for i = first, last, 500 do
  redis.call('RPUSH', KEYS[7], unpack(ARGV, i, math.min(i + 499, last)))
end
local deliveries_first, deliveries_last = take(counts[2] * 3)
first, last = take(counts[3] * 2)
for i = first, last, 500 do  -- whole pairs: 500 is even
  redis.call('HSET', KEYS[16], unpack(ARGV, i, math.min(i + 499, last)))
end
if ARGV[19] ~= '' then
  redis.call('APPEND', KEYS[17], ARGV[19] .. '\n')
end
-- each subscription's new deliveries' timers (score, id), added together: Redis pays per call
local sending, subscribers = {}, {}
for i = deliveries_first, deliveries_last, 3 do
  if redis.call('SET', ARGV[20] .. ARGV[i], ARGV[i + 2], 'NX') then
    local subscription = ARGV[i + 1]
    local timers = sending[subscription]
    if timers == nil then
      timers = {}
      sending[subscription] = timers
      subscribers[#subscribers + 1] = subscription
    end
    timers[#timers + 1] = now
    timers[#timers + 1] = ARGV[i]
  end
end
for _, subscription in ipairs(subscribers) do
  all('ZADD', ARGV[21] .. subscription, sending[subscription])  -- 500 items a call: whole pairs
  redis.call('ZADD', KEYS[11], 'LT', now, subscription)  -- its earliest timer is now at the latest
end
local consumed = tonumber(ARGV[8])
if consumed > 0 then
  redis.call('LTRIM', KEYS[8], consumed, -1)
  redis.call('DECRBY', KEYS[14], consumed)
end
if ARGV[9] ~= '' then
  redis.call('SET', KEYS[9], ARGV[9])
elseif had_held then
  redis.call('DEL', KEYS[9])
end
local due = tonumber(ARGV[11])
if redis.call('LLEN', KEYS[8]) > 0 then
  local recover = now + tonumber(ARGV[12])
  if due == nil or recover < due then due = recover end
end
if due == nil then
  redis.call('ZREM', KEYS[10], ARGV[10])
else
  redis.call('ZADD', KEYS[10], due, ARGV[10])
end
if ARGV[5] == '1' and ARGV[2] ~= '' then
  local retention = tonumber(ARGV[13])
  -- one instant for the keys and the runs index: the sweep takes the run out of the index once
  -- its keys are gone, and finds them gone because they expire exactly when its entry is due
  local gone = now + retention * 1000
  redis.call('PEXPIREAT', KEYS[1], gone)
  redis.call('PEXPIREAT', KEYS[2], gone)
  redis.call('PEXPIREAT', KEYS[3], gone)
  redis.call('PEXPIREAT', KEYS[16], gone)
  redis.call('PEXPIREAT', KEYS[17], gone)
  redis.call('SET', KEYS[4], ARGV[6], 'PXAT', now + retention * 2000)
  redis.call('ZADD', KEYS[13], gone, ARGV[4])
end
-- The step index (keys.step_index, ARGV 22 and 23 around a step id): the steps this commit
-- created point at this run; when the commit finishes the run, all its steps do, and then
-- expire with it.
if ARGV[5] == '1' and ARGV[2] ~= '' then
  local index_gone = now + tonumber(ARGV[13]) * 1000
  for id in string.gmatch(redis.call('GET', KEYS[17]) or '', '[^\n]+') do
    redis.call('SET', ARGV[22] .. id .. ARGV[23], ARGV[4], 'PXAT', index_gone)
  end
else
  for id in string.gmatch(ARGV[19], '[^\n]+') do
    redis.call('SET', ARGV[22] .. id .. ARGV[23], ARGV[4])
  end
end
return next_version
