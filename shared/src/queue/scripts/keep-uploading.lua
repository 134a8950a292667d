-- KEYS: record     ARGV: ttlSeconds
-- Returns 1 when the record is uploading (its life renewed), 0 when it is not (or is gone).
--
-- KEEP-UPLOADING: an upload in progress keeps its record alive (it expires only when its
-- upload-service dies); never a record that has left `uploading`, which enqueue made persistent.
if redis.call('HGET', KEYS[1], 'status') ~= 'uploading' then return 0 end
return redis.call('EXPIRE', KEYS[1], ARGV[1])
