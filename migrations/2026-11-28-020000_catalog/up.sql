-- Catalog: membership tiers, posts gated by tiers, likes, comments, media.
-- Owned by the catalog domain. Billing references tiers(id); social reads posts/likes/comments.

CREATE TABLE tiers (
    id           BIGSERIAL   PRIMARY KEY,
    creator_id   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    -- Minor units (paise, cents). 0 = the creator's public (free) tier.
    price        BIGINT      NOT NULL CHECK (price >= 0),
    currency     TEXT        NOT NULL CHECK (currency IN ('INR', 'USD')),
    benefits     JSONB       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(benefits) = 'array'),
    -- false = no new members; existing ones keep access until their paid period ends.
    is_active    BOOLEAN     NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tiers_creator_idx ON tiers (creator_id, id);
-- At most one active free tier per creator.
CREATE UNIQUE INDEX tiers_one_free_tier_key ON tiers (creator_id) WHERE price = 0 AND is_active;

CREATE TABLE posts (
    id           BIGSERIAL   PRIMARY KEY,
    creator_id   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT        NOT NULL,
    body         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A creator's page / the feed (newest first); also serves the creator_id foreign key.
CREATE INDEX posts_creator_created_idx ON posts (creator_id, created_at DESC, id DESC);
-- Newest-first listing of everything.
CREATE INDEX posts_created_idx ON posts (created_at DESC, id DESC);

-- The tiers that unlock a post; no rows = public post.
-- A tier that gates posts cannot be deleted (RESTRICT): deleting it must never make a post public.
CREATE TABLE post_tiers (
    post_id      BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tier_id      BIGINT      NOT NULL REFERENCES tiers (id) ON DELETE RESTRICT,
    PRIMARY KEY (post_id, tier_id)
);
CREATE INDEX post_tiers_tier_idx ON post_tiers (tier_id);

CREATE TABLE likes (
    id           BIGSERIAL   PRIMARY KEY,
    post_id      BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT likes_post_user_key UNIQUE (post_id, user_id)
);
CREATE INDEX likes_user_idx ON likes (user_id);

CREATE TABLE comments (
    id           BIGSERIAL   PRIMARY KEY,
    post_id      BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text         TEXT        NOT NULL CHECK (char_length(text) BETWEEN 1 AND 5000),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Oldest-first pages of a post's comments; also serves the post_id foreign key.
CREATE INDEX comments_post_created_idx ON comments (post_id, created_at, id);
CREATE INDEX comments_user_idx ON comments (user_id);

-- Uploaded files. The bytes live in $OASIS_DATA_DIR/media/<sha256[0..2]>/<sha256>; rows sharing
-- a hash share the file.
CREATE TABLE media (
    id            BIGSERIAL   PRIMARY KEY,
    owner_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256        TEXT        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    kind          TEXT        NOT NULL CHECK (kind IN ('image', 'attachment')),
    content_type  TEXT        NOT NULL,
    size          BIGINT      NOT NULL CHECK (size > 0),
    filename      TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX media_owner_idx ON media (owner_id);
CREATE INDEX media_sha256_idx ON media (sha256);

CREATE TABLE post_attachments (
    post_id      BIGINT      NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    media_id     BIGINT      NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    position     INTEGER     NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, media_id)
);
CREATE INDEX post_attachments_media_idx ON post_attachments (media_id);
