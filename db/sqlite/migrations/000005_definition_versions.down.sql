ALTER TABLE stream DROP COLUMN definition_version;
DROP TABLE IF EXISTS definition_version;
