-- What the web console reads (issue 18). Keep in step with ../postgres/0028_console_reads.sql.
--
-- The audit page filters by actor and by action (a prefix such as `device.`), newest first:
-- these indexes answer a page of either without reading the whole log.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
-- The dashboard counts failed profile installs: a partial index holds only those rows, so the
-- count reads them alone, and a check-in that moves a profile between other states does not
-- touch it.
CREATE INDEX profile_states_failed_idx ON profile_states (device_id) WHERE state = 'failed';
