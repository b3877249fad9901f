-- PostgreSQL's migration of this number indexes the open-stream key by its
-- digest, because a btree entry there holds at most about 2.7 KB. SQLite
-- indexes have no such limit, so stream_open_key stays on the key itself
-- and nothing changes; the number keeps both drivers' versions equal.
SELECT 1;
