-- Bench sessions and wrong-PIN counts live in the database, so every `serve`
-- on this database (several behind a load balancer, or one restarted) knows a
-- bench's sign-in. The cookie's token itself is never stored: only its
-- SHA-256, so a copy of the database signs nobody in.
CREATE TABLE signins (
    token_sha256 TEXT PRIMARY KEY,
    operator     TEXT NOT NULL,
    bench        TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL      -- Unix milliseconds of the last request
) STRICT;
CREATE INDEX signins_bench ON signins (bench);

CREATE TABLE pin_failures (
    name            TEXT PRIMARY KEY,
    count           INTEGER NOT NULL CHECK (count > 0),
    locked_until_ms INTEGER             -- Unix milliseconds; NULL: not locked
) STRICT;
