DROP INDEX users_full_name_trgm_idx;
DROP INDEX users_username_trgm_idx;
DROP INDEX posts_fts_idx;
DROP INDEX posts_title_fts_idx;
DROP TABLE follows;
