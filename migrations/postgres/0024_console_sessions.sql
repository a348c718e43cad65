-- Web console sessions (issue 18). Keep in step with ../sqlite/0024_console_sessions.sql.
-- Times are Unix milliseconds.
--
-- id_hash: SHA-256 of the session cookie's random value; the value itself is stored nowhere,
-- so a database dump opens no session. The form's CSRF token is derived from the value too
-- (console/session.rs), so it needs no column.
-- admin_name: who signed in. A session counts only while that admin is not revoked (checked
-- on every request by a join), so revoking an admin ends its console sessions at once, on
-- every server sharing the database.
CREATE TABLE console_sessions (
    id_hash    BYTEA PRIMARY KEY NOT NULL,
    admin_name TEXT NOT NULL REFERENCES admins (name),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);
