-- KEYS: record, processing, queue     ARGV: id, now, slot
-- Returns 'released', 'canceled' (a cancel was pending), or 'lost' (the slot did not hold it); a
-- repeat after a lost reply returns what the first call did.
--
-- RELEASE: the owner gives a started build back (it is shutting down): next in line, status queued,
-- the attempt handed back (a shutdown is not the deployment's failure). A cancel asked for meanwhile
-- wins: the deployment ends canceled instead.
local record, processing, queue = KEYS[1], KEYS[2], KEYS[3]
local id, now, slot = ARGV[1], ARGV[2], ARGV[3]
local outcome = let_go(record, processing, id, now, slot)
if outcome then return outcome end
redis.call('HSET', record, 'attempts', math.max(0, num(redis.call('HGET', record, 'attempts'), 1) - 1))
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'settled', slot .. ' released')
redis.call('RPUSH', queue, id)
return 'released'
