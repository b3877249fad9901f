-- Events: the envelope in columns, the traits in one typed JSON object
-- (see db/encoding.go), so a stream's events come back in one query.
-- All times are epoch microseconds (UTC).
CREATE TABLE event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL,
    traits      TEXT    NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX event_message_id ON event (message_id);
CREATE INDEX event_event_type ON event (event_type);
CREATE INDEX event_timestamp ON event (timestamp);

-- Streams. stream_key is stream.Key of the distinguishing values, which are
-- also kept as typed JSON in dist_traits. At most one open stream exists per
-- (name, stream_key): the partial unique index enforces it.
CREATE TABLE stream (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    stream_key       TEXT    NOT NULL,
    dist_traits      TEXT    NOT NULL DEFAULT '{}',
    state            INTEGER NOT NULL,
    state_serial_no  INTEGER NOT NULL DEFAULT 0,
    open             INTEGER NOT NULL DEFAULT 0,
    first_event      INTEGER NOT NULL,
    last_event       INTEGER NOT NULL,
    expire_timestamp INTEGER,
    fire_timestamp   INTEGER,
    fire_counts      TEXT,
    claimed_by       TEXT,
    lease_until      INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       INTEGER
);
CREATE UNIQUE INDEX stream_open_key ON stream (name, stream_key) WHERE open = 1;
CREATE INDEX stream_name ON stream (name);
CREATE INDEX stream_state ON stream (state);
-- Hot paths of the workers: ready to fire, ready to expire, stale claims.
CREATE INDEX stream_ready_fire ON stream (fire_timestamp, id) WHERE state IN (1, 7);
CREATE INDEX stream_ready_expire ON stream (expire_timestamp, id) WHERE state IN (1, 8);
CREATE INDEX stream_stale_claim ON stream (lease_until, id) WHERE state IN (2, 3);

-- Links between streams and events. Deleting a stream or an event deletes
-- its links.
CREATE TABLE stream_event (
    stream_id INTEGER NOT NULL REFERENCES stream (id) ON DELETE CASCADE,
    event_id  INTEGER NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    PRIMARY KEY (stream_id, event_id)
) WITHOUT ROWID;
CREATE INDEX stream_event_event_id ON stream_event (event_id);
