-- The next command of an enrollment: its open entries in delivery order (priority, then
-- FIFO). The report's pick (`REPORT_BATCH` in mdm/src/store/sqlite.rs) filters on several
-- statuses, so `queue_next_idx (enrollment_id, status, priority DESC, seq)` cannot give that
-- order and SQLite sorted the entries in a temporary b-tree on every report
-- (docs/benchmarks.md, issue 19). Only open entries are in this index, so it stays as small
-- as the queues. The condition is spelled with `=` and `OR`: a constant `IN` list here made
-- every update of an entry build a temporary b-tree to evaluate it. PostgreSQL sorts the few
-- open entries in memory without a temporary structure and needs no such index.
CREATE INDEX queue_open_idx ON queue_entries (enrollment_id, priority DESC, seq)
    WHERE status = 'Pending' OR status = 'Sent' OR status = 'NotNow';
