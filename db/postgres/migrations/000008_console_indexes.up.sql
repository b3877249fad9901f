-- Indexes for the console's listings over large tables.
--
-- stream_state_id replaces stream_state: "the newest streams in state X"
-- (the overview's recent errors, the streams list filtered by state, page
-- after page) reads just those entries in id order, however rare or
-- common X is and wherever its rows are, and counting a state is still an
-- index-only scan.
--
-- stream_dist_traits lets a filter on distinguishing values (the trait
-- parameter of GET /v1/streams and of the console) find its streams by
-- containment instead of reading every row.
BEGIN;
CREATE INDEX stream_state_id ON stream (state, id);
DROP INDEX stream_state;
CREATE INDEX stream_dist_traits ON stream USING gin (dist_traits jsonb_path_ops);
COMMIT;
