BEGIN;
DROP INDEX stream_dist_traits;
CREATE INDEX stream_state ON stream (state);
DROP INDEX stream_state_id;
COMMIT;
