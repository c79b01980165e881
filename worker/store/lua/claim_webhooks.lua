-- Claim due webhook deliveries for one delivery process, with their records, within the room
-- each subscription has left in that process: a slow subscription's backlog is pushed back out
-- of the way instead of being claimed only to wait (worker/store/sending.py).
-- KEYS: 1 webhook timers, 2 subscriptions version.
-- ARGV: 1 lease ms, 2 how many to claim at most, 3 how many due members to look at,
--   4 room of a subscription not listed, 5 ms to push its surplus back,
--   6 Lua pattern capturing a member's subscription id, 7 timer member prefix,
--   8 delivery record key prefix,
--   then per listed subscription: id, room, ms to push its surplus back (0: leave it due).
-- A member whose subscription the pattern does not find is claimed as if it had room.
-- Returns {now ms, subscriptions version or false, earliest due ms or false,
--   member, due ms, record or false, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, limit, scan, default_room = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local default_defer = tonumber(ARGV[5])
local pattern, timer_prefix, record_prefix = ARGV[6], ARGV[7], ARGV[8]
local room, defer = {}, {}
for i = 9, #ARGV, 3 do
  room[ARGV[i]] = tonumber(ARGV[i + 1])
  defer[ARGV[i]] = tonumber(ARGV[i + 2])
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, scan)
local reply = {now, redis.call('GET', KEYS[2]), false}
local claimed = 0
for i = 1, #due, 2 do
  if claimed >= limit then break end
  local member = due[i]
  local sub = string.match(member, pattern)
  local left = sub and (room[sub] or default_room) or 1
  if left > 0 then
    if sub then room[sub] = left - 1 end
    claimed = claimed + 1
    redis.call('ZADD', KEYS[1], now + lease, member)
    reply[#reply + 1] = member
    reply[#reply + 1] = due[i + 1]
    reply[#reply + 1] = redis.call('GET', record_prefix .. string.sub(member, #timer_prefix + 1))
  else
    local later = defer[sub] or default_defer
    if later > 0 then redis.call('ZADD', KEYS[1], now + later, member) end
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then reply[3] = first[2] end
return reply
