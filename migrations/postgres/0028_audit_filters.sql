-- The console's audit page (issue 18) filters by actor and by action (a prefix such as
-- `device.`), newest first: these indexes answer a page of either without reading the whole
-- log. Keep in step with ../sqlite/0028_audit_filters.sql.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
