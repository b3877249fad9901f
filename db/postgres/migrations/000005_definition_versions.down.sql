ALTER TABLE stream DROP COLUMN IF EXISTS definition_version;
DROP TABLE IF EXISTS definition_version;
