-- Claim due webhook deliveries for one delivery process, with their records, within the room
-- each subscription has left in that process (worker/store/sending.py). It walks subscriptions
-- in the order of their earliest timers, not deliveries: one with no room left costs one step
-- however long its backlog, and has its place pushed back out of the way.
-- KEYS: 1 the ready subscriptions, 2 subscriptions version, 3 the legacy timers (one set for every subscription, as earlier builds kept them).
-- ARGV: 1 lease ms, 2 how many to claim at most, 3 how many due subscriptions to look at,
--   4 slots free and 5 queue room of a subscription not listed, 6 ms to push its place back
--   once it has no room left, 7 a subscription's timers key less its id, 8 a delivery record
--   key less its id, 9 a legacy timer's prefix, 10 Lua pattern capturing a legacy timer's
--   subscription id, then per listed subscription: id, slots free, queue room, ms to push its
--   place back once it has no room left.
-- Deliveries that can start at once are claimed first, across every subscription due; only
-- then what may wait in a subscription's queue.
-- Returns {now ms, subscriptions version or false, earliest timer ms or false,
--   subscription id, delivery id, record or false, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, limit, scan = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local default_start, default_queue, default_defer = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local timers_prefix, record_prefix = ARGV[7], ARGV[8]
local start, queue, defer = {}, {}, {}
for i = 11, #ARGV, 4 do
  start[ARGV[i]] = tonumber(ARGV[i + 1])
  queue[ARGV[i]] = tonumber(ARGV[i + 2])
  defer[ARGV[i]] = tonumber(ARGV[i + 3])
end

-- Timers written before per-subscription timers move over, a few hundred a claim.
local legacy = redis.call('ZRANGE', KEYS[3], 0, 499, 'WITHSCORES')
for i = 1, #legacy, 2 do
  local member = legacy[i]
  local subscription = string.match(member, ARGV[10])
  if subscription then
    redis.call('ZADD', timers_prefix .. subscription, legacy[i + 1], string.sub(member, #ARGV[9] + 1))
    redis.call('ZADD', KEYS[1], 'LT', legacy[i + 1], subscription)
  end
  redis.call('ZREM', KEYS[3], member)
end

local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, scan)
local reply = {now, redis.call('GET', KEYS[2]), false}
local claimed, left = 0, {}
local function take(subscription, room)
  local n = math.min(room, limit - claimed)
  if n <= 0 then return 0 end
  local timers = timers_prefix .. subscription
  local due = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'LIMIT', 0, n)
  for _, delivery in ipairs(due) do
    redis.call('ZADD', timers, now + lease, delivery)
    reply[#reply + 1] = subscription
    reply[#reply + 1] = delivery
    reply[#reply + 1] = redis.call('GET', record_prefix .. delivery)
  end
  claimed = claimed + #due
  return #due
end
for _, subscription in ipairs(ready) do
  local room = start[subscription] or default_start
  left[subscription] = room + (queue[subscription] or default_queue) - take(subscription, room)
end
for _, subscription in ipairs(ready) do
  local room = queue[subscription] or default_queue
  left[subscription] = left[subscription] - take(subscription, math.min(room, left[subscription]))
end
-- each one's place: its earliest timer now, or a while later when it is due with no room left
for _, subscription in ipairs(ready) do
  local first = redis.call('ZRANGE', timers_prefix .. subscription, 0, 0, 'WITHSCORES')
  if first[2] == nil then
    redis.call('ZREM', KEYS[1], subscription)
  else
    local at = tonumber(first[2])
    if left[subscription] <= 0 and at <= now then at = now + (defer[subscription] or default_defer) end
    redis.call('ZADD', KEYS[1], at, subscription)
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then reply[3] = first[2] end
return reply
