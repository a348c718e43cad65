-- Configuration profiles: the catalog of uploaded .mobileconfig files, every version of each,
-- and who should have them. Keep in step with ../sqlite/0009_profiles.sql. Times are Unix
-- milliseconds. (0008 is the groups migration, added in parallel.)

-- One row per PayloadIdentifier. Deleting is soft (deleted_at): the history stays, and what
-- turns desired state into commands still knows to remove the profile from Macs.
CREATE TABLE profiles (
    identifier     TEXT PRIMARY KEY NOT NULL,  -- the profile's PayloadIdentifier
    name           TEXT NOT NULL,              -- PayloadDisplayName (or the identifier)
    description    TEXT,
    organization   TEXT,
    scope          TEXT NOT NULL,              -- PayloadScope: System | User
    payload_types  TEXT NOT NULL,              -- JSON array of the latest version's types
    latest_version BIGINT NOT NULL,
    deleted_at     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Every upload of an identifier is a new version; Macs converge to the newest.
CREATE TABLE profile_versions (
    identifier     TEXT NOT NULL REFERENCES profiles (identifier),
    version        BIGINT NOT NULL,
    payload_uuid   TEXT NOT NULL,              -- the profile's PayloadUUID
    name           TEXT NOT NULL,
    scope          TEXT NOT NULL,
    payload_types  TEXT NOT NULL,              -- JSON array
    sha256         TEXT NOT NULL,              -- of the uploaded bytes, lowercase hex
    body_sealed    BYTEA NOT NULL,              -- the whole .mobileconfig, AES-256-GCM sealed
    signed         BOOLEAN NOT NULL,           -- CMS-signed: delivered byte for byte
    has_variables  BOOLEAN NOT NULL,           -- expanded per device before delivery
    uploaded_by    TEXT NOT NULL,              -- the admin token's name
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (identifier, version)
);

-- Who should have a profile: groups by name, devices by UDID.
CREATE TABLE profile_assignments (
    identifier  TEXT NOT NULL REFERENCES profiles (identifier),
    target_kind TEXT NOT NULL CHECK (target_kind IN ('group', 'device')),
    target      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (identifier, target_kind, target)
);
CREATE INDEX profile_assignments_target_idx ON profile_assignments (target_kind, target);
