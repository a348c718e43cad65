-- Macs whose FileVault personal recovery key Russet is still waiting for (issue 14): Russet's
-- FileVault profile is on the Mac but no key is escrowed yet (macOS escrows it at the user's
-- next login, or once FileVault is on). SecurityInfo is asked again at next_ask_at, backing
-- off (the retry, doubled per attempt, at most a day); the row goes when a key is escrowed.
CREATE TABLE filevault_asks (
    device_id   TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    attempts    BIGINT NOT NULL,
    next_ask_at BIGINT NOT NULL
);
CREATE INDEX filevault_asks_due_idx ON filevault_asks (next_ask_at);

-- Rotations Russet queues by itself some time after a Mac's key was revealed
-- (--filevault-rotate-after-reveal-secs; off by default): a revealed key is no longer a secret
-- only Russet holds. The first reveal's time stands; the row goes once the rotation is queued.
CREATE TABLE filevault_rotate_due (
    device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    due_at    BIGINT NOT NULL
);
CREATE INDEX filevault_rotate_due_idx ON filevault_rotate_due (due_at);
