DROP INDEX posts_creator_id_idx;
DROP TRIGGER posts_count_truncate ON posts;
DROP FUNCTION creator_post_counts_truncate();
DROP TRIGGER posts_count_moves ON posts;
DROP TRIGGER posts_count_rows ON posts;
DROP FUNCTION creator_post_counts_apply();
DROP TABLE creator_post_counts;
