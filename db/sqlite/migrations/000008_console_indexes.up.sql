-- PostgreSQL's migration of this number indexes streams by (state, id) and
-- their distinguishing values (GIN). SQLite's stream_state index already
-- holds the rowid (id) after the state, and SQLite has no GIN: nothing
-- changes here; the number keeps both drivers' versions equal.
SELECT 1;
