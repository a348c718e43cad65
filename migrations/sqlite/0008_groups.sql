-- Groups (device collections). Keep in step with ../postgres/0008_groups.sql. Times are Unix
-- milliseconds.

-- A group is static (filter NULL: its members are listed in device_group_members) or smart
-- (its members are the devices its filter matches, evaluated when read). Names are unique
-- regardless of case, so `group = "Finance"` in a filter can only mean one group.
CREATE TABLE device_groups (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT,
    filter      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX device_groups_name_key ON device_groups (lower(name));

-- Static members, by UDID or by serial number. A member by serial is resolved when read: it
-- survives re-enrollment under a new UDID, and a serial known only from DEP becomes a device
-- when the Mac enrolls. Rows go with their group.
CREATE TABLE device_group_members (
    group_name TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('udid', 'serial')),
    value      TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (group_name, kind, value)
);
-- The groups of a device: by its UDID and by its serial.
CREATE INDEX device_group_members_value_idx ON device_group_members (value, kind);
