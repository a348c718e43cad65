-- What the web console reads (issue 18). Keep in step with ../sqlite/0028_console_reads.sql.
--
-- The audit page filters by actor, newest first: this index answers a page of one admin's
-- entries without reading the whole log. (Action prefixes and target parts are LIKE
-- patterns, which neither database answers from a plain index; those filters read the log
-- newest first until a page is full.)
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
-- The dashboard counts failed profile installs: a partial index holds only those rows, so the
-- count reads them alone, and a check-in that moves a profile between other states does not
-- touch it.
CREATE INDEX profile_states_failed_idx ON profile_states (device_id) WHERE state = 'failed';
