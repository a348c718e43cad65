-- Declarative Device Management (issue 17): the DDM channel's per-Mac state, what Macs report
-- in their status reports, and OS updates enforced per group. Keep in step with
-- ../postgres/0020_ddm.sql. Times are Unix milliseconds; JSON is stored as text.

-- An OS update enforced on a group's Macs (`com.apple.configuration.softwareupdate.
-- enforcement.specific`). One per group: the unique index keeps the rule in the database.
-- The deadline is a local date-time on the Mac (`YYYY-MM-DDTHH:MM:SS`, no zone), as Apple's
-- `TargetLocalDateTime` takes it. Rows go with their group.
CREATE TABLE os_updates (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name           TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
    target_os_version    TEXT NOT NULL,
    target_build_version TEXT,
    deadline             TEXT NOT NULL,
    details_url          TEXT,
    created_at           INTEGER NOT NULL,
    created_by           TEXT NOT NULL
);
CREATE UNIQUE INDEX os_updates_group_key ON os_updates (group_name);

-- Per Mac: the DeclarationsToken of its declaration set when it last changed (the tokens
-- endpoint's Timestamp is `token_at`), and the token last handed out in a declaration-items
-- answer (what the Mac has fetched).
CREATE TABLE ddm_devices (
    device_id    TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    token        TEXT NOT NULL,
    token_at     INTEGER NOT NULL,
    served_token TEXT,
    served_at    INTEGER,
    errors       TEXT,
    reported_at  INTEGER
);

-- The status items a Mac reported (`softwareupdate.install-state`, …), the value as JSON.
-- Reports may be partial: an item is replaced when reported again, kept otherwise.
CREATE TABLE ddm_status_items (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    item       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, item)
);

-- `management.declarations`: how the Mac took each declaration it processed.
CREATE TABLE ddm_declaration_states (
    device_id    TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    identifier   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    server_token TEXT NOT NULL,
    valid        TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    reasons      TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (device_id, identifier)
);
