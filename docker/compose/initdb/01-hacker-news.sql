-- The production schema of the Hacker News database (as upvote's `data pull` expects it), created
-- once when the PostgreSQL container starts on an empty volume (/docker-entrypoint-initdb.d).
-- One difference: url is text, not varchar(255): the shipped sample has URLs longer than 255.
CREATE SCHEMA IF NOT EXISTS hacker_news;

CREATE TABLE IF NOT EXISTS hacker_news.items (
    id int PRIMARY KEY,
    dead bool,
    type varchar(20),
    by varchar(255),
    "time" timestamp,
    text text,
    parent int,
    kids int[],
    url text,
    score int,
    title varchar(255),
    descendants int
);
CREATE INDEX IF NOT EXISTS items_by ON hacker_news.items (by);
CREATE INDEX IF NOT EXISTS items_time ON hacker_news.items ("time");
CREATE INDEX IF NOT EXISTS items_type ON hacker_news.items (type);

CREATE TABLE IF NOT EXISTS hacker_news.users (
    id varchar(255) PRIMARY KEY,
    created timestamp,
    karma int,
    about text,
    submitted int[]
);
