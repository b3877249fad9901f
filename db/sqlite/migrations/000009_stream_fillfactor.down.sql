-- Nothing to undo: the up migration of this number changes nothing on SQLite.
SELECT 1;
