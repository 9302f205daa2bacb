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
    # Gold tables built from its silver rows, replaced per report date (transforms/gold.py
    # holds how each is built, conf/sql/gold_tables.sql its SQL table).
    gold_tables: tuple[str, ...] = ()
    # Gold tables kept current per key instead (upserted; table -> key columns).
    current_tables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The setting that decides where its producer lands it (files or Kafka) and where its
    # bronze job reads; None: both are possible at once (`ingest` files, `stream` Kafka).
    landing_setting: str | None = None
    # Offered as files in the incoming folder to `lakehouse_daily`, under this name by
    # default (a file or a folder); None: the feed has its own hourly and daily DAGs
    # (dags/lakehouse_feeds.py).
    incoming_file: str | None = None
    # Streamed by `lakehouse stream` when no dataset is named.
    streamed_by_default: bool = False
    # What keys its Kafka records (so each client's records stay in order on one
    # partition): a JSON path in the record, or FIRST_WORD for a text line.
    kafka_key: str = "$.ip"

    @property
    def silver_command(self) -> str:
        return f"silver-{self.name.replace('_', '-')}"

    @property
    def all_gold_tables(self) -> tuple[str, ...]:
        return self.gold_tables + tuple(t for t, _keys in self.current_tables)


FIRST_WORD = "first word"  # an access-log line's client address

FEEDS: dict[str, Feed] = {
    feed.name: feed
    for feed in (
        Feed(
            "access_logs",
            "web-server access logs (Apache/Nginx combined or a configured format)",
            gold_tables=("endpoint_daily", "top_ips_daily", "traffic_daily", "agent_daily",
                         "request_country_daily", "request_referrer_daily"),  # fmt: skip
            incoming_file="access.log",
            streamed_by_default=True,
            kafka_key=FIRST_WORD,
        ),
        Feed(
            "product_views",
            "product-view events (JSON lines, the product-analytics pipeline's shape)",
            gold_tables=("product_views_daily", "country_views_daily", "referrer_views_daily"),
            incoming_file="product_views.jsonl",
            streamed_by_default=True,
            kafka_key="$.device_id",
        ),
        Feed(
            "web_events",
            "web events for 5-minute traffic windows and sessions",
            gold_tables=("traffic_5min", "traffic_5min_referrer", "sessions"),
            landing_setting="web_events.source",
        ),
        Feed(
            "api_ticks",
            "ticks of a polled JSON HTTP API (`lakehouse poll`)",
            gold_tables=("api_daily_summary",),
            landing_setting="poll.sink",
            kafka_key="$.symbol",
        ),
        Feed(
            "ip_events",
            "IP sightings sent to the collector (`POST /ingest-ip`), geolocated per IP",
            current_tables=(("ip_geolocation", ("ip",)),),
            landing_setting="ip_events.sink",
        ),
    )
}
NAMES: tuple[str, ...] = tuple(FEEDS)


def feed(name: str) -> Feed:
    """The registered feed `name`; a clear error naming the registered ones otherwise."""
    try:
        return FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}") from None
