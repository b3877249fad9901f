-- Event subscribers (package subscriber): each subscriber's durable
-- position in the event log, changed only by compare-and-set on
-- serial_no, and its dead letters. All times are epoch microseconds.
-- SQLite serialises writers and ids only grow (AUTOINCREMENT), so id order
-- is commit order: a position is an event id (position_xact stays 0).
CREATE TABLE subscriber (
    name          TEXT PRIMARY KEY,
    serial_no     INTEGER NOT NULL DEFAULT 0,
    position_xact INTEGER NOT NULL DEFAULT 0,
    position_id   INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT NOT NULL DEFAULT '',
    lease_until   INTEGER,
    delivered     INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL
);

CREATE TABLE subscriber_dead_letter (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber  TEXT NOT NULL,
    event_id    INTEGER NOT NULL,
    message_id  TEXT NOT NULL DEFAULT '',
    event_type  TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    retry       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX subscriber_dead_letter_subscriber ON subscriber_dead_letter (subscriber, id);
