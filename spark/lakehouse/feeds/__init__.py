"""The feed registry: every feed the lakehouse knows, declared once.

Everything that loops over feeds reads `FEEDS` (ingest, stream, produce, silver, gold,
status, metrics, the DAGs' tasks and Assets); a test proves each command knows each feed
(tests/test_feeds.py). A feed's name is its dataset everywhere: the bronze and silver
table, the `kafka.topics` key, the `--dataset` value, the `silver-<name>` command.

Plain data and the standard library only: the DAG files load this module by its path
(Airflow's venv holds no Spark and no `lakehouse` package).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feed:
    name: str
    description: str
    # Gold tables built from its silver rows and replaced per report date, with their key
    # columns (table, keys); transforms/gold.py holds how each is built, conf/sql/gold_tables.sql
    # its SQL table.
    gold: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Gold tables kept current per key instead (upserted; table, key columns).
    current: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The silver columns its gold tables read (checked before any is built).
    gold_reads: tuple[str, ...] = ()
    # Its gold rows of a date depend on the days around it (sessions cross midnight): a
    # refresh reads the neighbouring dates too and rewrites the dates whose rows change.
    gold_spans_dates: bool = False
    # The setting that decides where its producer lands it (files or Kafka) and where its
    # bronze job reads; None: both are possible at once (`ingest` files, `stream` Kafka).
    landing_setting: str | None = None
    # Offered as files in the incoming folder to `lakehouse_daily`, under this name by
    # default (a file or a folder); None: the feed has its own hourly and daily DAGs
    # (dags/lakehouse_feeds.py).
    incoming_file: str | None = None
    # How often its own DAG lands and cleans it (feeds without `incoming_file`); a feed with
    # tables kept current (`current`) also has them refreshed and exported by that DAG.
    landing_minutes: int = 60
    # Streamed by `lakehouse stream` when no dataset is named.
    streamed_by_default: bool = False
    # What keys its Kafka records (so each client's records stay in order on one
    # partition): a JSON path in the record, or FIRST_WORD for a text line.
    kafka_key: str = "$.ip"
    # Its silver rows exported one for one when `export.raw_rows` names it (off by default):
    # the SQL table (conf/sql/raw_tables.sql) and its columns as (SQL column, silver column).
    raw_table: str | None = None
    raw_columns: tuple[tuple[str, str], ...] = ()

    @property
    def silver_command(self) -> str:
        return f"silver-{self.name.replace('_', '-')}"

    @property
    def gold_tables(self) -> tuple[str, ...]:
        """Its gold tables replaced per report date."""
        return tuple(table for table, _keys in self.gold)

    @property
    def current_tables(self) -> tuple[str, ...]:
        """Its gold tables kept current per key."""
        return tuple(table for table, _keys in self.current)

    @property
    def all_gold_tables(self) -> tuple[str, ...]:
        return self.gold_tables + self.current_tables


FIRST_WORD = "first word"  # an access-log line's client address

FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        Feed(
            "access_logs",
            "web-server access logs (Apache/Nginx combined or a configured format)",
            gold=(
                ("endpoint_daily", ("report_date", "endpoint")),
                ("top_ips_daily", ("report_date", "ip")),
                ("traffic_daily", ("report_date",)),
                ("agent_daily", ("report_date", "browser", "os", "device", "is_bot")),
                ("request_country_daily", ("report_date", "country")),
                ("request_referrer_daily", ("report_date", "referrer_host")),
            ),
            gold_reads=("event_date", "endpoint", "ip", "status", "bytes", "response_time_ms", "user_agent",
                        "ua_browser", "ua_os", "ua_device", "is_bot", "country", "referrer"),  # fmt: skip
            incoming_file="access.log",
            streamed_by_default=True,
            kafka_key=FIRST_WORD,
            # Seed 001's `web_logs` (ip, ts, method, endpoint, status, response_time_ms, the
            # agent and its device/os/browser, country, city) and the rest of a request.
            raw_table="web_logs",
            raw_columns=(
                ("event_id", "event_id"), ("event_date", "event_date"), ("ts", "event_ts"), ("ip", "ip"),
                ("method", "method"), ("endpoint", "endpoint"), ("path", "path"), ("query", "query"),
                ("protocol", "protocol"), ("status", "status"), ("bytes", "bytes"),
                ("response_time_ms", "response_time_ms"), ("referrer", "referrer"), ("user_agent", "user_agent"),
                ("ua_device", "ua_device"), ("ua_os", "ua_os"), ("ua_browser", "ua_browser"), ("is_bot", "is_bot"),
                ("country", "country"), ("city", "city"), ("latitude", "latitude"), ("longitude", "longitude"),
            ),  # fmt: skip
        ),
        Feed(
            "product_views",
            "product-view events (JSON lines, the product-analytics pipeline's shape)",
            gold=(
                ("product_views_daily", ("report_date", "product_id")),
                ("country_views_daily", ("report_date", "country")),
                ("referrer_views_daily", ("report_date", "referrer_host")),
                # the seed's own meanings beside ours: its "country" is the store, its referrer the full URL
                ("store_views_daily", ("report_date", "store_id")),
                ("referrer_url_views_daily", ("report_date", "referrer_url")),
            ),
            gold_reads=("event_date", "event_ts", "product_id", "device_id", "country", "referrer_host",
                        "store_id", "referrer_url"),  # fmt: skip
            incoming_file="product_views.jsonl",
            streamed_by_default=True,
            kafka_key="$.device_id",
        ),
        Feed(
            "web_events",
            "web events for 5-minute traffic windows and sessions",
            gold=(
                ("traffic_5min", ("report_date", "window_start", "host")),
                ("traffic_5min_referrer", ("report_date", "window_start", "host", "referrer_host")),
                ("sessions", ("report_date", "ip", "host", "session_start")),
            ),
            gold_reads=("event_date", "event_ts", "ip", "host", "referrer_host"),
            gold_spans_dates=True,
            landing_setting="web_events.source",
            # Seed 002's `processed_events` (the Flink job's enriched events: ip,
            # event_timestamp, referrer, host, url, and the geolocation's country, state, city).
            raw_table="processed_events",
            raw_columns=(
                ("event_id", "event_id"), ("event_date", "event_date"), ("event_timestamp", "event_ts"),
                ("ip", "ip"), ("host", "host"), ("url", "url"), ("path", "path"), ("referrer", "referrer"),
                ("referrer_host", "referrer_host"), ("country", "country"), ("state", "region"), ("city", "city"),
                ("user_agent", "user_agent"), ("ua_browser", "ua_browser"), ("ua_os", "ua_os"),
                ("ua_device", "ua_device"), ("is_bot", "is_bot"), ("extra", "extra"),
            ),  # fmt: skip
        ),
        Feed(
            "api_ticks",
            "ticks of a polled JSON HTTP API (`lakehouse poll`)",
            gold=(("api_daily_summary", ("report_date", "symbol")),),
            gold_reads=("event_date", "event_ts", "symbol", "price"),
            landing_setting="poll.sink",
            kafka_key="$.symbol",
        ),
        Feed(
            "ip_events",
            "IP sightings sent to the collector (`POST /ingest-ip`), geolocated per IP",
            current=(("ip_geolocation", ("ip",)),),
            landing_setting="ip_events.sink",
            landing_minutes=10,  # the collector's geolocation table, current every 10 minutes (seed 000)
        ),
    )
}
NAMES: tuple[str, ...] = tuple(FEEDS)
# The feeds whose silver rows `export.raw_rows` may export one for one.
RAW_NAMES: tuple[str, ...] = tuple(name for name, feed in FEEDS.items() if feed.raw_table)


def feed(name: str) -> Feed:
    """The registered feed `name`; a clear error naming the registered ones otherwise."""
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}") from None
