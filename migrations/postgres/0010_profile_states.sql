-- Where each configuration profile stands on each Mac channel (the reconciler's state), and
-- the ProfileList it asked each channel for. Rows go with their enrollment.
CREATE TABLE profile_states (
    enrollment_id   TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL,
    identifier      TEXT NOT NULL,
    -- pending, installing, verified, failed, removing, removed
    state           TEXT NOT NULL,
    version         BIGINT NOT NULL,
    -- The PayloadUUID a ProfileList shows once `version` is installed.
    payload_uuid    TEXT NOT NULL,
    -- The InstallProfile or RemoveProfile last queued, and when.
    command_uuid    TEXT,
    queued_at       BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    -- Apple's ErrorChain of the last failure, JSON.
    error           TEXT,
    verified_at     BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (enrollment_id, identifier)
);
CREATE INDEX profile_states_device_idx ON profile_states (device_id);
CREATE INDEX profile_states_identifier_idx ON profile_states (identifier, state);

CREATE TABLE profile_checks (
    enrollment_id   TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,
    command_uuid    TEXT NOT NULL,
    requested_at    BIGINT NOT NULL
);
