-- Shared by admit.lua and settle.lua. KEYS: 1 requests (sorted set: ticket -> ms), 2 tokens
-- (hash: second -> tokens), 3 reservations (hash: ticket -> estimate), 4 leases (sorted set:
-- ticket -> deadline ms), 5 spent (integer, no expiry).
local WINDOW = 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local second = math.floor(now / 1000)

-- Tokens go to this second's bucket and to the spend.
local function charge(n)
  if n > 0 then
    redis.call('HINCRBY', KEYS[2], second, n)
    redis.call('PEXPIRE', KEYS[2], WINDOW + 1000)
    redis.call('INCRBY', KEYS[5], n)
  end
end

-- A lease past its deadline belongs to a holder that died: its estimate is charged.
local function sweep()
  local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
  for _, ticket in ipairs(dead) do
    local estimate = tonumber(redis.call('HGET', KEYS[3], ticket) or '0')
    redis.call('HDEL', KEYS[3], ticket)
    redis.call('ZREM', KEYS[4], ticket)
    charge(estimate)
  end
end
