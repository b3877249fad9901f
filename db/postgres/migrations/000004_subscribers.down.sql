DROP TABLE IF EXISTS subscriber_dead_letter;
DROP TABLE IF EXISTS subscriber;
DROP INDEX IF EXISTS event_xact_id;
ALTER TABLE event DROP COLUMN IF EXISTS xact_id;
