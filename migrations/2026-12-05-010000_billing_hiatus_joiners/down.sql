DROP INDEX memberships_hiatus_idx;
ALTER TABLE memberships DROP COLUMN hiatus_id;
