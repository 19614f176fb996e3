-- Posts per creator, maintained in the same transaction as every insert and delete of a post, so
-- the hot reads (feed `count`, profile `post_count`, a creator's post list) read one row per
-- creator instead of counting every post on every page (issue 16, docs/scaling.md). Exact, not
-- an estimate: a statement sees the counter and the posts in the same snapshot.
CREATE TABLE creator_post_counts (
    creator_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    posts BIGINT NOT NULL CHECK (posts >= 0)
);

CREATE FUNCTION creator_post_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE creator_post_counts SET posts = posts - 1 WHERE creator_id = OLD.creator_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO creator_post_counts AS c (creator_id, posts) VALUES (NEW.creator_id, 1)
        ON CONFLICT (creator_id) DO UPDATE SET posts = c.posts + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_count_rows AFTER INSERT OR DELETE ON posts
    FOR EACH ROW EXECUTE FUNCTION creator_post_counts_apply();
CREATE TRIGGER posts_count_moves AFTER UPDATE OF creator_id ON posts
    FOR EACH ROW WHEN (OLD.creator_id IS DISTINCT FROM NEW.creator_id)
    EXECUTE FUNCTION creator_post_counts_apply();

CREATE FUNCTION creator_post_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM creator_post_counts;
    RETURN NULL;
END
$$;
CREATE TRIGGER posts_count_truncate AFTER TRUNCATE ON posts
    FOR EACH STATEMENT EXECUTE FUNCTION creator_post_counts_truncate();

INSERT INTO creator_post_counts (creator_id, posts)
SELECT creator_id, count(*) FROM posts GROUP BY creator_id;

-- A pinned feed page subtracts the followed creators' posts newer than its pin: a range of this
-- index per creator (the new posts only).
CREATE INDEX posts_creator_id_idx ON posts (creator_id, id);
