-- The open-stream key is indexed by its digest, not its text: a btree
-- entry holds at most about 2.7 KB, so a distinguishing value longer than
-- that failed the whole batch (SQLSTATE 54000). key_digest is the SHA-256
-- of the UTF-8 bytes of stream_key, computed by the database (a generated
-- column, so no writer can get it wrong); lookups match the digest with the
-- index and then compare the full key. The SQLite driver's migration of
-- the same number changes nothing: SQLite indexes have no size limit.
BEGIN;

-- convert_to is only STABLE because it can convert between encodings; with
-- UTF8 as the target and a UTF8 database it is a pure function of its
-- argument, which is what a generated column and an index require.
CREATE FUNCTION stream_key_digest(key text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(key, 'UTF8')) $$;

ALTER TABLE stream ADD COLUMN key_digest BYTEA GENERATED ALWAYS AS (stream_key_digest(stream_key)) STORED;

DROP INDEX stream_open_key;
CREATE UNIQUE INDEX stream_open_key ON stream (name, key_digest) WHERE open;

COMMIT;
