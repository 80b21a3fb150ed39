-- ARGV: ticket, estimate, actual tokens. Releases the reservation and charges the actual
-- tokens; if the lease had already run out (and the estimate was charged), only what the
-- answer used beyond the estimate. Returns the key's spend.
local ticket, estimate, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('HDEL', KEYS[3], ticket) == 1 then
  redis.call('ZREM', KEYS[4], ticket)
  charge(actual)
else
  charge(actual - estimate)
end
sweep()
return tonumber(redis.call('GET', KEYS[5]) or '0')
