-- Raw declarations per group (issue 17, "Beyond"): an admin's declaration JSON, checked
-- against Apple's declarative schemas, served by the DDM channel to the group's Macs. Keep in
-- step with ../postgres/0021_ddm_declarations.sql. Times are Unix milliseconds.
CREATE TABLE ddm_declarations (
    identifier       TEXT PRIMARY KEY NOT NULL,
    group_name       TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    declaration_type TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    created_by       TEXT NOT NULL
);
CREATE INDEX ddm_declarations_group_idx ON ddm_declarations (group_name);
