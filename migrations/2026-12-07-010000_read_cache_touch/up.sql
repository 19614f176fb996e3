-- The read cache's invalidation (docs/scaling.md, "The read cache"): every write to a table that
-- a cached read depends on names the keys it changed, once per statement, on two channels:
--   oasis_cache              every server process's listener (other processes' caches);
--   oasis_touch_<backend pid> the writing connection itself, which LISTENs on it when pooled by
--                            an Oasis server: the server reads these right after its own work,
--                            so a process always reads its own writes.
-- Keys: c<creator> (posts, tiers, member counts, followers), p<post> (one post's record),
-- u<user> (account, tokens), f<fan> (follows), m<fan> (memberships), l<fan> (likes); '*' when a
-- statement touched more than 300 keys (everything is dropped). NOTIFY is transactional: nothing
-- is heard for a rolled-back write, and everything at its commit.
CREATE FUNCTION oasis_touch(keys text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE payload text;
BEGIN
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(keys) > 300 THEN
        payload := '*';
    ELSE
        payload := array_to_string(keys, ' ');
    END IF;
    PERFORM pg_notify('oasis_cache', payload);
    PERFORM pg_notify('oasis_touch_' || pg_backend_pid(), payload);
END $$;

CREATE FUNCTION posts_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM new_rows r UNION SELECT 'p' || r.id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER posts_touch_insert AFTER INSERT ON posts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION posts_touch_insert();

CREATE FUNCTION posts_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r UNION SELECT 'p' || r.id AS k FROM old_rows r UNION SELECT 'c' || r.creator_id AS k FROM new_rows r UNION SELECT 'p' || r.id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER posts_touch_update AFTER UPDATE ON posts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION posts_touch_update();

CREATE FUNCTION posts_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r UNION SELECT 'p' || r.id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER posts_touch_delete AFTER DELETE ON posts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION posts_touch_delete();

CREATE FUNCTION post_tiers_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_tiers_touch_insert AFTER INSERT ON post_tiers REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_tiers_touch_insert();

CREATE FUNCTION post_tiers_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r UNION SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_tiers_touch_update AFTER UPDATE ON post_tiers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_tiers_touch_update();

CREATE FUNCTION post_tiers_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_tiers_touch_delete AFTER DELETE ON post_tiers REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_tiers_touch_delete();

CREATE FUNCTION post_attachments_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_attachments_touch_insert AFTER INSERT ON post_attachments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_attachments_touch_insert();

CREATE FUNCTION post_attachments_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r UNION SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_attachments_touch_update AFTER UPDATE ON post_attachments REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_attachments_touch_update();

CREATE FUNCTION post_attachments_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER post_attachments_touch_delete AFTER DELETE ON post_attachments REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION post_attachments_touch_delete();

CREATE FUNCTION likes_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM new_rows r UNION SELECT 'l' || r.user_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER likes_touch_insert AFTER INSERT ON likes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION likes_touch_insert();

CREATE FUNCTION likes_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r UNION SELECT 'l' || r.user_id AS k FROM old_rows r UNION SELECT 'p' || r.post_id AS k FROM new_rows r UNION SELECT 'l' || r.user_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER likes_touch_update AFTER UPDATE ON likes REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION likes_touch_update();

CREATE FUNCTION likes_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r UNION SELECT 'l' || r.user_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER likes_touch_delete AFTER DELETE ON likes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION likes_touch_delete();

CREATE FUNCTION comments_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER comments_touch_insert AFTER INSERT ON comments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION comments_touch_insert();

CREATE FUNCTION comments_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r UNION SELECT 'p' || r.post_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER comments_touch_update AFTER UPDATE ON comments REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION comments_touch_update();

CREATE FUNCTION comments_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'p' || r.post_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER comments_touch_delete AFTER DELETE ON comments REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION comments_touch_delete();

CREATE FUNCTION tiers_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tiers_touch_insert AFTER INSERT ON tiers REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiers_touch_insert();

CREATE FUNCTION tiers_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r UNION SELECT 'c' || r.creator_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tiers_touch_update AFTER UPDATE ON tiers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiers_touch_update();

CREATE FUNCTION tiers_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tiers_touch_delete AFTER DELETE ON tiers REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiers_touch_delete();

CREATE FUNCTION memberships_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'm' || r.user_id AS k FROM new_rows r UNION SELECT 'c' || (SELECT t.creator_id FROM tiers t WHERE t.id = r.tier_id) AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER memberships_touch_insert AFTER INSERT ON memberships REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_touch_insert();

CREATE FUNCTION memberships_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'm' || r.user_id AS k FROM old_rows r UNION SELECT 'c' || (SELECT t.creator_id FROM tiers t WHERE t.id = r.tier_id) AS k FROM old_rows r UNION SELECT 'm' || r.user_id AS k FROM new_rows r UNION SELECT 'c' || (SELECT t.creator_id FROM tiers t WHERE t.id = r.tier_id) AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER memberships_touch_update AFTER UPDATE ON memberships REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_touch_update();

CREATE FUNCTION memberships_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'm' || r.user_id AS k FROM old_rows r UNION SELECT 'c' || (SELECT t.creator_id FROM tiers t WHERE t.id = r.tier_id) AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER memberships_touch_delete AFTER DELETE ON memberships REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memberships_touch_delete();

CREATE FUNCTION users_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER users_touch_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_touch_insert();

CREATE FUNCTION users_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.id AS k FROM old_rows r UNION SELECT 'u' || r.id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER users_touch_update AFTER UPDATE ON users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_touch_update();

CREATE FUNCTION users_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER users_touch_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_touch_delete();

CREATE FUNCTION auth_tokens_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.user_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER auth_tokens_touch_insert AFTER INSERT ON auth_tokens REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION auth_tokens_touch_insert();

CREATE FUNCTION auth_tokens_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.user_id AS k FROM old_rows r UNION SELECT 'u' || r.user_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER auth_tokens_touch_update AFTER UPDATE ON auth_tokens REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION auth_tokens_touch_update();

CREATE FUNCTION auth_tokens_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'u' || r.user_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER auth_tokens_touch_delete AFTER DELETE ON auth_tokens REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION auth_tokens_touch_delete();

CREATE FUNCTION follows_touch_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM new_rows r UNION SELECT 'f' || r.follower_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER follows_touch_insert AFTER INSERT ON follows REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION follows_touch_insert();

CREATE FUNCTION follows_touch_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r UNION SELECT 'f' || r.follower_id AS k FROM old_rows r UNION SELECT 'c' || r.creator_id AS k FROM new_rows r UNION SELECT 'f' || r.follower_id AS k FROM new_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER follows_touch_update AFTER UPDATE ON follows REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION follows_touch_update();

CREATE FUNCTION follows_touch_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY(SELECT k FROM (SELECT 'c' || r.creator_id AS k FROM old_rows r UNION SELECT 'f' || r.follower_id AS k FROM old_rows r) s WHERE k IS NOT NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER follows_touch_delete AFTER DELETE ON follows REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION follows_touch_delete();

-- TRUNCATE fires no row or statement trigger of the kinds above: it drops everything.
CREATE FUNCTION oasis_touch_everything() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM oasis_touch(ARRAY['*']);
    RETURN NULL;
END $$;
CREATE TRIGGER posts_touch_truncate AFTER TRUNCATE ON posts
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER post_tiers_touch_truncate AFTER TRUNCATE ON post_tiers
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER post_attachments_touch_truncate AFTER TRUNCATE ON post_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER likes_touch_truncate AFTER TRUNCATE ON likes
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER comments_touch_truncate AFTER TRUNCATE ON comments
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER tiers_touch_truncate AFTER TRUNCATE ON tiers
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER memberships_touch_truncate AFTER TRUNCATE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER users_touch_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER auth_tokens_touch_truncate AFTER TRUNCATE ON auth_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
CREATE TRIGGER follows_touch_truncate AFTER TRUNCATE ON follows
    FOR EACH STATEMENT EXECUTE FUNCTION oasis_touch_everything();
