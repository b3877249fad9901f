-- Back to the default fillfactor (100) for pages written from now on;
-- like the up migration, a storage parameter only, under a SHARE UPDATE
-- EXCLUSIVE lock for an instant.
ALTER TABLE stream RESET (fillfactor);
