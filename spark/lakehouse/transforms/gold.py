"""Daily gold aggregates: pure functions of silver rows (filter the dates before calling)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.feeds import FEEDS
from lakehouse.feeds.api_ticks import parse as api_ticks
from lakehouse.feeds.ip_events import parse as ip_events
from lakehouse.feeds.web_events import windows as web_windows
from lakehouse.transforms.records import DIRECT_REFERRER, require_columns, url_host

UNKNOWN_COUNTRY = "(unknown)"
UNKNOWN_AGENT = "(unknown)"
UNKNOWN_STORE = "(unknown)"


def _views(df: DataFrame, key: Column, name: str) -> DataFrame:
    return df.groupBy(F.col("event_date").alias("report_date"), key.alias(name)).agg(
        F.count(F.lit(1)).alias("view_count"),
        F.count_distinct("device_id").alias("unique_visitors"),
    )


def product_views_daily(views: DataFrame) -> DataFrame:
    """Views, distinct devices and the last view time per (report_date, product_id)."""
    return views.groupBy(F.col("event_date").alias("report_date"), "product_id").agg(
        F.count(F.lit(1)).alias("view_count"),
        F.count_distinct("device_id").alias("unique_visitors"),
        F.max("event_ts").alias("last_view_time"),
    )


def country_views_daily(views: DataFrame) -> DataFrame:
    """Views and distinct devices per (report_date, GeoIP country of the visitor)."""
    return _views(views, F.coalesce(F.col("country"), F.lit(UNKNOWN_COUNTRY)), "country")


def referrer_views_daily(views: DataFrame) -> DataFrame:
    """Views and distinct devices per (report_date, referrer host); no referrer is `(direct)`."""
    return _views(views, F.coalesce(F.col("referrer_host"), F.lit(DIRECT_REFERRER)), "referrer_host")


def _blank_to(col: Column, fill: str) -> Column:
    """`col`, or `fill` when it is null or blank (as `url_host` sees blank)."""
    return F.when(F.trim(col) != "", col).otherwise(F.lit(fill))


def store_views_daily(views: DataFrame) -> DataFrame:
    """Views and distinct devices per (report_date, store_id as sent), the seed's "country
    views"; no store_id (null or blank) is `(unknown)`."""
    return _views(views, _blank_to(F.col("store_id"), UNKNOWN_STORE), "store_id")


def referrer_url_views_daily(views: DataFrame) -> DataFrame:
    """Views and distinct devices per (report_date, full referrer_url as sent), the seed's
    "referrer views"; no referrer_url (null or blank) is `(direct)`."""
    return _views(views, _blank_to(F.col("referrer_url"), DIRECT_REFERRER), "referrer_url")


def endpoint_daily(requests: DataFrame) -> DataFrame:
    """Traffic, status classes, bytes and latency percentiles per (report_date, endpoint)."""
    status = F.col("status")

    def in_class(low: int) -> Column:
        return F.count_if(status.between(low, low + 99)).cast("bigint")

    rt = F.col("response_time_ms")
    key = (F.col("event_date").alias("report_date"), "endpoint")
    on = ["report_date", "endpoint"]
    # Three aggregates joined on the key, each the cheapest of its kind: plain counts and
    # sums (hash aggregation); exact distinct IPs (a distinct count inside the counts would
    # double every row); exact percentiles over the rows that have a response time only
    # (a sort-based aggregation, and nothing at all for a format without %D/%T).
    counts = requests.groupBy(*key).agg(
        F.count(F.lit(1)).alias("requests"),
        in_class(200).alias("status_2xx"),
        in_class(300).alias("status_3xx"),
        in_class(400).alias("status_4xx"),
        in_class(500).alias("status_5xx"),
        F.coalesce(F.sum("bytes"), F.lit(0)).cast("bigint").alias("bytes"),
    )
    # Every key has a row here (count ignores the null IP).
    unique_ips = requests.select(*key, "ip").distinct().groupBy(*on).agg(F.count("ip").alias("unique_ips"))
    latency = (
        requests.where(rt.isNotNull())
        .groupBy(*key)
        .agg(
            F.percentile(rt, F.lit(0.5)).alias("p50_ms"),
            F.percentile(rt, F.lit(0.95)).alias("p95_ms"),
            F.percentile(rt, F.lit(0.99)).alias("p99_ms"),
        )
    )
    return (
        counts.join(unique_ips, on)
        .join(latency, on, "left")
        .withColumn("error_rate", (F.col("status_4xx") + F.col("status_5xx")) / F.col("requests"))
        .select(
            "report_date", "endpoint", "requests", "unique_ips", "status_2xx", "status_3xx",
            "status_4xx", "status_5xx", "error_rate", "bytes", "p50_ms", "p95_ms", "p99_ms",
        )
    )


def traffic_daily(requests: DataFrame) -> DataFrame:
    """One row per report_date: requests, distinct IPs, visitors, bot requests, status
    classes and bytes.

    A visitor is a distinct (IP, user agent) pair of the day, GoAccess's definition: people
    behind one NAT address with different browsers count apart. One pass: the rows are first
    reduced to one per (day, IP, agent), whose count per day is the visitors.
    """
    status = F.col("status")
    per_visitor = requests.groupBy(F.col("event_date").alias("report_date"), "ip", "user_agent").agg(
        F.count(F.lit(1)).alias("requests"),
        F.count_if(F.coalesce(F.col("is_bot"), F.lit(False))).alias("bot_requests"),
        *(F.count_if(status.between(low, low + 99)).alias(f"status_{low // 100}xx") for low in (200, 300, 400, 500)),
        F.coalesce(F.sum("bytes"), F.lit(0)).alias("bytes"),
    )
    return per_visitor.groupBy("report_date").agg(
        F.sum("requests").cast("bigint").alias("requests"),
        F.count_distinct("ip").alias("unique_ips"),
        F.count(F.lit(1)).alias("unique_visitors"),
        F.sum("bot_requests").cast("bigint").alias("bot_requests"),
        *(F.sum(f"status_{c}xx").cast("bigint").alias(f"status_{c}xx") for c in (2, 3, 4, 5)),
        F.sum("bytes").cast("bigint").alias("bytes"),
    )


def _requests_by(requests: DataFrame, **keys: Column) -> DataFrame:
    return requests.groupBy(F.col("event_date").alias("report_date"), *(c.alias(n) for n, c in keys.items())).agg(
        F.count(F.lit(1)).alias("requests"), F.count_distinct("ip").alias("unique_ips")
    )


def agent_daily(requests: DataFrame) -> DataFrame:
    """Requests and distinct IPs per (report_date, browser, OS, device class, bot or not);
    an agent the classifier knows nothing of (or no agent) is `(unknown)`, not a bot."""
    unknown = F.lit(UNKNOWN_AGENT)
    return _requests_by(
        requests,
        browser=F.coalesce(F.col("ua_browser"), unknown),
        os=F.coalesce(F.col("ua_os"), unknown),
        device=F.coalesce(F.col("ua_device"), unknown),
        is_bot=F.coalesce(F.col("is_bot"), F.lit(False)),
    )


def request_country_daily(requests: DataFrame) -> DataFrame:
    """Requests and distinct IPs per (report_date, GeoIP country of the client IP)."""
    return _requests_by(requests, country=F.coalesce(F.col("country"), F.lit(UNKNOWN_COUNTRY)))


def request_referrer_daily(requests: DataFrame) -> DataFrame:
    """Requests and distinct IPs per (report_date, referrer host); none (`-`) is `(direct)`."""
    return _requests_by(requests, referrer_host=F.coalesce(url_host(F.col("referrer")), F.lit(DIRECT_REFERRER)))


def top_ips_daily(requests: DataFrame, top_n: int) -> DataFrame:
    """The `top_n` IPs by requests per report_date (ties: lower IP first)."""
    counts = requests.groupBy(F.col("event_date").alias("report_date"), "ip").agg(
        F.count(F.lit(1)).alias("requests")
    )
    rank = F.row_number().over(Window.partitionBy("report_date").orderBy(F.desc("requests"), "ip"))
    return counts.withColumn("_rank", rank).where(F.col("_rank") <= top_n).drop("_rank")


@dataclass(frozen=True)
class GoldParams:
    """The plain settings some gold tables need (from `gold.*` and `web_events.*`)."""

    top_ips_per_day: int = 100
    session_gap_seconds: int = 60


# gold table -> builder(silver rows, params); which feed's silver rows: the registry's.
BUILDERS = {
    "product_views_daily": lambda df, _p: product_views_daily(df),
    "country_views_daily": lambda df, _p: country_views_daily(df),
    "referrer_views_daily": lambda df, _p: referrer_views_daily(df),
    "store_views_daily": lambda df, _p: store_views_daily(df),
    "referrer_url_views_daily": lambda df, _p: referrer_url_views_daily(df),
    "endpoint_daily": lambda df, _p: endpoint_daily(df),
    "top_ips_daily": lambda df, p: top_ips_daily(df, p.top_ips_per_day),
    "traffic_daily": lambda df, _p: traffic_daily(df),
    "agent_daily": lambda df, _p: agent_daily(df),
    "request_country_daily": lambda df, _p: request_country_daily(df),
    "request_referrer_daily": lambda df, _p: request_referrer_daily(df),
    "traffic_5min": lambda df, _p: web_windows.traffic_5min(df),
    "traffic_5min_referrer": lambda df, _p: web_windows.traffic_5min_referrer(df),
    "sessions": lambda df, p: web_windows.sessions(df, p.session_gap_seconds),
    "api_daily_summary": lambda df, _p: api_ticks.api_daily_summary(df),
}
# gold table -> (silver source, builder), in the registry's order (a table registered
# without a builder fails here, at import).
GOLD_TABLES = {table: (feed.name, BUILDERS[table]) for feed in FEEDS.values() for table in feed.gold_tables}

# gold table kept current per key -> builder(silver rows of the touched keys, refreshed_at).
CURRENT_BUILDERS = {"ip_geolocation": ip_events.ip_geolocation}

# Every gold table's key columns, from the registry (stream-windows upserts and the export use them).
PRIMARY_KEYS = {table: keys for feed in FEEDS.values() for table, keys in (*feed.gold, *feed.current)}

# Gold tables kept current per key rather than replaced per report date: `lakehouse gold`
# upserts the keys new silver rows touch, the export upserts them by key.
# table -> (silver source, key columns)
CURRENT_TABLES = {table: (feed.name, keys) for feed in FEEDS.values() for table, keys in feed.current}


def build_gold(table: str, silver: DataFrame, params: GoldParams) -> DataFrame:
    """The gold table `table` computed from its silver source rows."""
    source, build = GOLD_TABLES[table]
    require_columns(silver, FEEDS[source].gold_reads, f"silver/{source} rows for gold/{table}")
    return build(silver, params)
