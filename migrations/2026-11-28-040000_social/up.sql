-- Social: follows, plus the indexes the feed, creator pages and search run on.
-- Owned by the social domain; reads users (identity), posts/post_tiers (catalog), memberships (billing).

CREATE TABLE follows (
    id           BIGSERIAL   PRIMARY KEY,
    follower_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    creator_id   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Idempotent follow: INSERT ... ON CONFLICT DO NOTHING. Also serves follower_id (leading
    -- column): "whom do I follow" for the feed and the following count.
    CONSTRAINT follows_follower_creator_key UNIQUE (follower_id, creator_id),
    CONSTRAINT follows_not_self CHECK (follower_id <> creator_id)
);
-- Follower counts and a creator's daily new-follower series; serves the creator_id foreign key.
CREATE INDEX follows_creator_idx ON follows (creator_id, created_at);

-- Full-text search over posts. Two expression indexes, because a locked post may be found by
-- its title only: the title vector alone, and title (weight A) + body (weight B) for posts the
-- viewer may read. Queries must repeat these expressions exactly to use the indexes.
CREATE INDEX posts_title_fts_idx ON posts
    USING gin (to_tsvector('english'::regconfig, title));
CREATE INDEX posts_fts_idx ON posts
    USING gin ((setweight(to_tsvector('english'::regconfig, title), 'A')
             || setweight(to_tsvector('english'::regconfig, body), 'B')));

-- Creator name search: trigram similarity / substring on usernames and full names
-- (pg_trgm is enabled by the foundation migration).
CREATE INDEX users_username_trgm_idx ON users USING gin (lower(username) gin_trgm_ops);
CREATE INDEX users_full_name_trgm_idx ON users
    USING gin (lower(first_name || ' ' || last_name) gin_trgm_ops);
