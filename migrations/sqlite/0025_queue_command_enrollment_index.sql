-- The push fan-out reads a command's targets a page at a time, in enrollment order (a
-- fleet-wide command has 100k: reading them at once held the fleet in memory). With the
-- enrollment ID in the command's index, a page is a range of it; without it, every page read
-- all the command's entries and sorted them. Every query of the old index reads its prefix.
-- Keep in step with ../postgres/0025_queue_command_enrollment_index.sql.
DROP INDEX IF EXISTS queue_command_idx;
CREATE INDEX queue_command_idx ON queue_entries (command_uuid, enrollment_id);
