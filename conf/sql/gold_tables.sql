-- Gold tables as exported to SQL (PostgreSQL, and SQLite for the embedded default).
-- The same statements run on both; primary keys make a doubled day impossible.
CREATE TABLE IF NOT EXISTS product_views_daily (
    report_date     DATE         NOT NULL,
    product_id      VARCHAR(255) NOT NULL,
    view_count      BIGINT       NOT NULL,
    unique_visitors BIGINT       NOT NULL,
    last_view_time  TIMESTAMP,
    PRIMARY KEY (report_date, product_id)
);

CREATE TABLE IF NOT EXISTS country_views_daily (
    report_date     DATE         NOT NULL,
    country         VARCHAR(64)  NOT NULL,
    view_count      BIGINT       NOT NULL,
    unique_visitors BIGINT       NOT NULL,
    PRIMARY KEY (report_date, country)
);

CREATE TABLE IF NOT EXISTS referrer_views_daily (
    report_date     DATE         NOT NULL,
    referrer_host   VARCHAR(255) NOT NULL,
    view_count      BIGINT       NOT NULL,
    unique_visitors BIGINT       NOT NULL,
    PRIMARY KEY (report_date, referrer_host)
);

-- The seed's own meanings: views per store_id as sent (its "country views") and per full
-- referrer_url (silver quarantines a store_id over 255 characters, a URL over 2048 bytes).
CREATE TABLE IF NOT EXISTS store_views_daily (
    report_date     DATE         NOT NULL,
    store_id        VARCHAR(255) NOT NULL,
    view_count      BIGINT       NOT NULL,
    unique_visitors BIGINT       NOT NULL,
    PRIMARY KEY (report_date, store_id)
);

CREATE TABLE IF NOT EXISTS referrer_url_views_daily (
    report_date     DATE          NOT NULL,
    referrer_url    VARCHAR(2048) NOT NULL,
    view_count      BIGINT        NOT NULL,
    unique_visitors BIGINT        NOT NULL,
    PRIMARY KEY (report_date, referrer_url)
);

CREATE TABLE IF NOT EXISTS endpoint_daily (
    report_date DATE          NOT NULL,
    endpoint    VARCHAR(2048) NOT NULL,
    requests    BIGINT        NOT NULL,
    unique_ips  BIGINT        NOT NULL,
    status_2xx  BIGINT        NOT NULL,
    status_3xx  BIGINT        NOT NULL,
    status_4xx  BIGINT        NOT NULL,
    status_5xx  BIGINT        NOT NULL,
    error_rate  DOUBLE PRECISION NOT NULL,
    bytes       BIGINT        NOT NULL,
    p50_ms      DOUBLE PRECISION,
    p95_ms      DOUBLE PRECISION,
    p99_ms      DOUBLE PRECISION,
    PRIMARY KEY (report_date, endpoint)
);

CREATE TABLE IF NOT EXISTS top_ips_daily (
    report_date DATE        NOT NULL,
    ip          VARCHAR(64) NOT NULL,
    requests    BIGINT      NOT NULL,
    PRIMARY KEY (report_date, ip)
);

CREATE TABLE IF NOT EXISTS traffic_daily (
    report_date     DATE   NOT NULL PRIMARY KEY,
    requests        BIGINT NOT NULL,
    unique_ips      BIGINT NOT NULL,
    unique_visitors BIGINT NOT NULL,
    bot_requests    BIGINT NOT NULL,
    status_2xx      BIGINT NOT NULL,
    status_3xx      BIGINT NOT NULL,
    status_4xx      BIGINT NOT NULL,
    status_5xx      BIGINT NOT NULL,
    bytes           BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS agent_daily (
    report_date DATE         NOT NULL,
    browser     VARCHAR(512) NOT NULL,
    os          VARCHAR(512) NOT NULL,
    device      VARCHAR(32)  NOT NULL,
    is_bot      BOOLEAN      NOT NULL,
    requests    BIGINT       NOT NULL,
    unique_ips  BIGINT       NOT NULL,
    PRIMARY KEY (report_date, browser, os, device, is_bot)
);

CREATE TABLE IF NOT EXISTS request_country_daily (
    report_date DATE        NOT NULL,
    country     VARCHAR(64) NOT NULL,
    requests    BIGINT      NOT NULL,
    unique_ips  BIGINT      NOT NULL,
    PRIMARY KEY (report_date, country)
);

CREATE TABLE IF NOT EXISTS request_referrer_daily (
    report_date   DATE         NOT NULL,
    referrer_host VARCHAR(2048) NOT NULL,
    requests      BIGINT        NOT NULL,
    unique_ips    BIGINT       NOT NULL,
    PRIMARY KEY (report_date, referrer_host)
);

-- Which gold refresh of each report date the database holds; written in the same
-- transaction as that date's rows, so an export resumes exactly where it stopped.
CREATE TABLE IF NOT EXISTS lakehouse_export_state (
    report_date DATE        NOT NULL PRIMARY KEY,
    refresh_id  VARCHAR(64) NOT NULL,
    exported_at TIMESTAMP   NOT NULL
);

-- Web events (seed 002): 5-minute tumbling windows [window_start, window_end) in UTC, and
-- per-visitor sessions; report_date is the UTC date of the window or session start.
CREATE TABLE IF NOT EXISTS traffic_5min (
    report_date  DATE         NOT NULL,
    window_start TIMESTAMP    NOT NULL,
    window_end   TIMESTAMP    NOT NULL,
    host         VARCHAR(255) NOT NULL,
    hits         BIGINT       NOT NULL,
    unique_ips   BIGINT       NOT NULL,
    PRIMARY KEY (report_date, window_start, host)
);

CREATE TABLE IF NOT EXISTS traffic_5min_referrer (
    report_date   DATE         NOT NULL,
    window_start  TIMESTAMP    NOT NULL,
    window_end    TIMESTAMP    NOT NULL,
    host          VARCHAR(255) NOT NULL,
    referrer_host VARCHAR(255) NOT NULL,
    hits          BIGINT       NOT NULL,
    PRIMARY KEY (report_date, window_start, host, referrer_host)
);

CREATE TABLE IF NOT EXISTS sessions (
    report_date   DATE             NOT NULL,
    ip            VARCHAR(64)      NOT NULL,
    host          VARCHAR(255)     NOT NULL,
    session_start TIMESTAMP        NOT NULL,
    session_end   TIMESTAMP        NOT NULL,
    hits          BIGINT           NOT NULL,
    duration_s    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (report_date, ip, host, session_start)
);

-- Polled API ticks (seed 003), per UTC day and symbol.
CREATE TABLE IF NOT EXISTS api_daily_summary (
    report_date DATE             NOT NULL,
    symbol      VARCHAR(64)      NOT NULL,
    avg_price   DOUBLE PRECISION NOT NULL,
    min_price   DOUBLE PRECISION NOT NULL,
    max_price   DOUBLE PRECISION NOT NULL,
    n_records   BIGINT           NOT NULL,
    PRIMARY KEY (report_date, symbol)
);

-- IP sightings of the collector (seed 000): one row per IP, kept current (upserted by ip).
CREATE TABLE IF NOT EXISTS ip_geolocation (
    ip           VARCHAR(64)      NOT NULL PRIMARY KEY,
    country      VARCHAR(64),
    city         VARCHAR(255),
    latitude     DOUBLE PRECISION,
    longitude    DOUBLE PRECISION,
    first_seen   TIMESTAMP        NOT NULL,
    last_seen    TIMESTAMP        NOT NULL,
    hits         BIGINT           NOT NULL,
    refreshed_at TIMESTAMP        NOT NULL
);
