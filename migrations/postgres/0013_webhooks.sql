-- Webhooks (issue 16): the durable outbox. A check-in or command report that the core applied
-- adds one row per configured receiver URL, with the event's JSON body already built (secrets
-- redacted), before the Mac gets its answer. The delivery worker claims due rows with a lease
-- (`lease_until`, `lease_owner`), deletes a row once its receiver answered 2xx, and otherwise
-- retries it with exponential backoff until it is older than the give-up age. A row per event
-- per URL: one receiver being down never holds back another. (As in SQLite, but for the id.)
CREATE TABLE webhook_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    topic           TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT,
    last_error      TEXT
);
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (url, next_attempt_at, id);
CREATE INDEX webhook_outbox_age_idx ON webhook_outbox (created_at);

-- NanoMDM's `token_update_tally`: TokenUpdates since the channel (re-)enrolled, so a receiver
-- tells an enrollment's first TokenUpdate from a later one. (`token_update_count` stays the
-- lifetime count the device view shows.) Existing channels start from their lifetime count.
ALTER TABLE enrollments ADD COLUMN token_update_tally BIGINT NOT NULL DEFAULT 0;
UPDATE enrollments SET token_update_tally = token_update_count;
