-- Claim due webhook deliveries for one delivery process, with their records, within the room
-- each subscription has left in that process (worker/store/sending.py). It walks subscriptions
-- in the order of their earliest timers, not deliveries: one with no room left costs one step
-- however long its backlog, and has its place pushed back out of the way.
-- KEYS: 1 the ready subscriptions, 2 subscriptions version, 3 the legacy timers (one set for every subscription, as earlier builds kept them).
-- ARGV: 1 lease ms, 2 how many to claim at most, 3 how many due subscriptions to look at,
--   4 room of a subscription not listed, 5 ms to push its place back once it has none left,
--   6 a subscription's timers key less its id, 7 a delivery record key less its id,
--   8 a legacy timer's prefix, 9 Lua pattern capturing a legacy timer's subscription id,
--   then per listed subscription: id, room, ms to push its place back once it has none left.
-- Returns {now ms, subscriptions version or false, earliest timer ms or false,
--   subscription id, delivery id, record or false, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, limit, scan = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local default_room, default_defer = tonumber(ARGV[4]), tonumber(ARGV[5])
local timers_prefix, record_prefix = ARGV[6], ARGV[7]
local room, defer = {}, {}
for i = 10, #ARGV, 3 do
  room[ARGV[i]] = tonumber(ARGV[i + 1])
  defer[ARGV[i]] = tonumber(ARGV[i + 2])
end

-- Timers written before per-subscription timers move over, a few hundred a claim.
local legacy = redis.call('ZRANGE', KEYS[3], 0, 499, 'WITHSCORES')
for i = 1, #legacy, 2 do
  local member = legacy[i]
  local subscription = string.match(member, ARGV[9])
  if subscription then
    redis.call('ZADD', timers_prefix .. subscription, legacy[i + 1], string.sub(member, #ARGV[8] + 1))
    redis.call('ZADD', KEYS[1], 'LT', legacy[i + 1], subscription)
  end
  redis.call('ZREM', KEYS[3], member)
end

local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, scan)
local reply = {now, redis.call('GET', KEYS[2]), false}
local claimed = 0
for _, subscription in ipairs(ready) do
  if claimed >= limit then break end
  local timers = timers_prefix .. subscription
  local left = room[subscription] or default_room
  if left > 0 then
    local due = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'LIMIT', 0, math.min(left, limit - claimed))
    for _, delivery in ipairs(due) do
      redis.call('ZADD', timers, now + lease, delivery)
      reply[#reply + 1] = subscription
      reply[#reply + 1] = delivery
      reply[#reply + 1] = redis.call('GET', record_prefix .. delivery)
    end
    claimed = claimed + #due
    left = left - #due
  end
  -- its place: its earliest timer now, or a while later when it is due but has no room left
  local first = redis.call('ZRANGE', timers, 0, 0, 'WITHSCORES')
  if first[2] == nil then
    redis.call('ZREM', KEYS[1], subscription)
  else
    local at = tonumber(first[2])
    if left <= 0 and at <= now then at = now + (defer[subscription] or default_defer) end
    redis.call('ZADD', KEYS[1], at, subscription)
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then reply[3] = first[2] end
return reply
