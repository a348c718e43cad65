-- Admin accounts and roles (issue 16). Each admin has a name, a role and its own tokens
-- (SHA-256 hashes; the token itself is never stored). A revoked admin keeps its row, so the
-- audit log's names stay unambiguous, and loses its tokens. Existing tokens become admins with
-- the role `admin`, one per token name, so an upgrade locks nobody out. The audit log gains
-- the client address of the request that caused each entry.
CREATE TABLE admins (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at BIGINT NOT NULL,
    created_by TEXT,
    revoked_at BIGINT,
    revoked_by TEXT
);

INSERT INTO admins (name, role, created_at)
    SELECT name, 'admin', MIN(created_at) FROM admin_tokens GROUP BY name ORDER BY MIN(id);

ALTER TABLE admin_tokens ADD COLUMN admin_id BIGINT REFERENCES admins (id);
UPDATE admin_tokens SET admin_id = (SELECT a.id FROM admins a WHERE a.name = admin_tokens.name);
ALTER TABLE admin_tokens ALTER COLUMN admin_id SET NOT NULL;
CREATE INDEX admin_tokens_admin ON admin_tokens (admin_id);

ALTER TABLE audit_log ADD COLUMN address TEXT;
