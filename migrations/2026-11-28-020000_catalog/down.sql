DROP TABLE post_attachments;
DROP TABLE media;
DROP TABLE comments;
DROP TABLE likes;
DROP TABLE post_tiers;
DROP TABLE posts;
DROP TABLE tiers;
