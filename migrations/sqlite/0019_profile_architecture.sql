-- Architecture-specific profiles: a profile may be meant for Macs of one architecture only
-- (DeviceInformation `IsAppleSilicon`). NULL: every Mac (uploads). A Mac whose architecture is
-- not known yet gets none of the restricted ones until inventory says. Russet's golden image
-- profiles (one per image and architecture, issue 15) use it. Keep in step with the other
-- backend's 0019.
ALTER TABLE profiles ADD COLUMN architecture TEXT
    CHECK (architecture IS NULL OR architecture IN ('apple_silicon', 'intel'));
