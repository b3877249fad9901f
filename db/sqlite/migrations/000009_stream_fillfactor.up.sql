-- PostgreSQL's migration of this number leaves free space on the pages of
-- stream so that appends are HOT updates. SQLite has no fillfactor (its
-- appends touch only the indexes whose columns they set, see
-- AppendToStream): nothing changes here; the number keeps both drivers'
-- versions equal.
SELECT 1;
