-- KEYS: record, processing (this slot's), dead, deadReasons, [projectRunning, otherRecord, delayed]
-- ARGV: id, slot, now, processingPrefix, [aliasLabel, otherId ('' for none), dueMs]
-- Returns 'started' (build it), 'owned-elsewhere' (the slot lost it, or another live slot builds a copy:
--   drop this one), 'dropped' (finished, canceled or not uploaded: dropped from the slot's list),
--   'missing' (no record: moved to the dead list), 'waiting' (its branch is building: back to the
--   delayed set, not an attempt), 'branch' (a project deployment asked without its branch keys: read
--   them and ask again) or 'retry' (the branch's running deployment changed: read it and ask again).
--
-- START: claim → building. Only a slot that holds the id may start it. A record that is 'building'
-- for another slot which still holds the id is that slot's ('owned-elsewhere'); one whose owner no
-- longer holds it is a leftover of a lost write and is taken over. A retry of this step (its reply
-- was lost) finds the id already started by this slot.
local branch = nil
if NKEYS >= 7 then branch = { running = KEYS[5], other = KEYS[6], delayed = KEYS[7], label = ARGV[5], otherId = ARGV[6], due = ARGV[7] } end
return start_claimed(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], branch)
