-- Silver rows exported one for one (opt-in: `export.raw_rows` in conf/lakehouse.yaml; a
-- table is created only when its dataset is listed). Replaced per event_date with the
-- gold report date of the same day, in the same transaction. Text is TEXT: silver bounds
-- no descriptive value (an agent, a referrer URL, a query), and none may fail the export.
-- The primary key leads with event_date: the per-date DELETE uses it.

-- silver/access_logs, as seed 001's `web_logs` (one row per request).
CREATE TABLE IF NOT EXISTS web_logs (
    event_id         VARCHAR(64) NOT NULL,
    event_date       DATE        NOT NULL,
    ts               TIMESTAMP,
    ip               TEXT,
    method           TEXT,
    endpoint         TEXT,
    path             TEXT,
    query            TEXT,
    protocol         TEXT,
    status           INTEGER,
    bytes            BIGINT,
    response_time_ms DOUBLE PRECISION,
    referrer         TEXT,
    user_agent       TEXT,
    ua_device        TEXT,
    ua_os            TEXT,
    ua_browser       TEXT,
    is_bot           BOOLEAN,
    country          TEXT,
    city             TEXT,
    latitude         DOUBLE PRECISION,
    longitude        DOUBLE PRECISION,
    PRIMARY KEY (event_date, event_id)
);

-- silver/web_events, as seed 002's `processed_events` (the enriched events; `state` is
-- the GeoIP region).
CREATE TABLE IF NOT EXISTS processed_events (
    event_id        VARCHAR(64) NOT NULL,
    event_date      DATE        NOT NULL,
    event_timestamp TIMESTAMP,
    ip              TEXT,
    host            TEXT,
    url             TEXT,
    path            TEXT,
    referrer        TEXT,
    referrer_host   TEXT,
    country         TEXT,
    state           TEXT,
    city            TEXT,
    user_agent      TEXT,
    ua_browser      TEXT,
    ua_os           TEXT,
    ua_device       TEXT,
    is_bot          BOOLEAN,
    extra           TEXT,
    PRIMARY KEY (event_date, event_id)
);
