-- ARGV: rpm, tpm, budget, concurrency (0 = unlimited), estimate, ticket, lease ms.
-- Returns {1} when admitted, or {0, limit, retry-after ms}: 1 requests, 2 tokens,
-- 3 budget, 4 concurrency.
local rpm, tpm, budget, concurrency = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local estimate, ticket, lease = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
sweep()

local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do reserved = reserved + tonumber(v) end

-- A limit refuses once it is reached, or when the estimate would cross it.
local function over(used, limit)
  return limit > 0 and (used >= limit or used + estimate > limit)
end

if over(tonumber(redis.call('GET', KEYS[5]) or '0') + reserved, budget) then
  return {0, 3, 3600000}
end

if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, 1, math.max(tonumber(oldest[2]) + WINDOW - now, 1)}
  end
end

if tpm > 0 then
  local buckets = redis.call('HGETALL', KEYS[2])
  local seconds, window = {}, 0
  for i = 1, #buckets, 2 do
    local s, n = tonumber(buckets[i]), tonumber(buckets[i + 1])
    if s <= second - 60 then
      redis.call('HDEL', KEYS[2], buckets[i])
    else
      table.insert(seconds, {s, n})
      window = window + n
    end
  end
  local used = window + reserved
  if over(used, tpm) then
    -- Wait until enough buckets leave the window (reservations leave on their own).
    table.sort(seconds, function(a, b) return a[1] < b[1] end)
    local wait = 1000
    for _, b in ipairs(seconds) do
      used = used - b[2]
      wait = math.max((b[1] + 60) * 1000 - now, 1)
      if used < tpm and used + estimate <= tpm then break end
    end
    return {0, 2, wait}
  end
end

if concurrency > 0 and redis.call('ZCARD', KEYS[4]) >= concurrency then
  return {0, 4, 1000}
end

if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, ticket)
  redis.call('PEXPIRE', KEYS[1], WINDOW)
end
redis.call('HSET', KEYS[3], ticket, estimate)
redis.call('ZADD', KEYS[4], now + lease, ticket)
return {1}
