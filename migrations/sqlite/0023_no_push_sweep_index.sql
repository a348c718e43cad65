-- The push sweep's index on (enabled, last_seen_at) served no query: the sweep reads
-- COALESCE(last_seen_at, 0), which no index on the column matches, and both databases plan it
-- as a scan of the enrollments (EXPLAIN, docs/benchmarks.md). It made every write of
-- last_seen_at on the check-in path a B-tree write more.
-- Keep in step with ../postgres/0023_no_push_sweep_index.sql.
DROP INDEX IF EXISTS enrollments_push_sweep_idx;
