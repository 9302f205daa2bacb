"""Configuration: `conf/lakehouse.yaml` read once into a frozen, typed object.

The profile comes from LAKEHOUSE_PROFILE (local | services | compose). Any leaf can be
overridden with LAKEHOUSE_<SECTION>__<KEY>; secrets only ever come from the environment.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakehouse.feeds import FEEDS

PROFILES = ("local", "services", "cluster", "compose")
ENV_PREFIX = "LAKEHOUSE_"


class ConfigError(ValueError):
    """A missing or invalid configuration value; the message names the key."""


def project_root() -> Path:
    """The checkout holding conf/ (LAKEHOUSE_HOME, else found upwards from this file or cwd)."""
    if home := os.environ.get("LAKEHOUSE_HOME"):
        return Path(home).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "conf" / "lakehouse.yaml").is_file():
                return parent
    raise ConfigError("cannot find conf/lakehouse.yaml: set LAKEHOUSE_HOME to the project folder")


@dataclass(frozen=True)
class AccessLogConfig:
    log_format: str
    also_accept_common: bool


@dataclass(frozen=True)
class QualityConfig:
    min_event_date: str
    max_future_hours: int
    rules_file: Path | None = None  # conf/quality.yaml: the rules of `lakehouse check`


@dataclass(frozen=True)
class ExportConfig:
    url: str | None
    user: str | None
    password: str | None = field(repr=False)
    schema_ddl: Path

    @property
    def enabled(self) -> bool:
        return bool(self.url) and self.url != "none"

    @property
    def dialect(self) -> str:
        if not self.enabled:
            return "none"
        if self.url.startswith("jdbc:sqlite:"):
            return "sqlite"
        if self.url.startswith("jdbc:postgresql:"):
            return "postgresql"
        raise ConfigError(f"export.url: unsupported JDBC url {self.url!r} (sqlite or postgresql)")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    topics: dict[str, str]
    starting_offsets: str
    max_offsets_per_trigger: int
    fail_on_data_loss: bool
    trigger: str
    # Loopback port of the stream's Prometheus endpoint (`lakehouse stream`); None: off.
    metrics_port: int | None = None


@dataclass(frozen=True)
class WebEventsConfig:
    """Web events (seed 002): sessions, and the real-time windows of `lakehouse stream-windows`."""

    session_gap_seconds: int
    lateness_seconds: int
    trigger: str
    # Kafka topic the enriched events are also published to; None: not published.
    processed_events_topic: str | None
    # Where the feed lands and its bronze job reads (`landing` files or `kafka`), resolved
    # from `auto` by profile; `landing` is the file or folder of the files.
    source: str = "landing"
    landing: Path | None = None


@dataclass(frozen=True)
class PollConfig:
    """`lakehouse poll` (seed 003): the endpoint, its timing, and where a tick's fields live."""

    url: str
    interval_seconds: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_retries: int
    symbol_field: str
    price_field: str
    time_field: str
    # Embedded default (no Kafka): the folder the raw responses are written to as JSON lines.
    landing: Path
    # Where the poller sends (`landing` or `kafka`) and the bronze job reads, from `auto` by profile.
    sink: str = "landing"


IP_EVENT_SINKS = ("auto", "landing", "kafka")
# The feeds whose producer (a file drop, the poller, the collector) lands either files or
# Kafka records: one setting each decides both where it lands and where bronze reads.
FEED_SETTINGS = {name: feed.landing_setting for name, feed in FEEDS.items() if feed.landing_setting}


def _landing_or_kafka(raw: dict, key: str, profile: str) -> str:
    """`landing` or `kafka` from the setting `key`; `auto`: landing in the local profile (the
    embedded default has no broker), kafka in every other."""
    value = str(_get(raw, key)).lower()
    if value not in IP_EVENT_SINKS:
        raise ConfigError(f"{key} must be one of {', '.join(IP_EVENT_SINKS)}, got {value!r}")
    if value == "auto":
        return "landing" if profile == "local" else "kafka"
    return value


@dataclass(frozen=True)
class IpEventsConfig:
    """The IP collector of `lakehouse serve` (seed 000): where accepted IPs go."""

    # `landing` or `kafka`; the configured `auto` is resolved by profile (landing for local).
    sink: str
    # Embedded default (no Kafka): the folder the accepted IPs are written to as JSON lines.
    landing: Path | None
    delivery_timeout_seconds: float
    # A landing file per this many seconds (hidden while written, then renamed).
    roll_seconds: float = 60.0


IP_ANONYMISATIONS = ("none", "truncate", "hash")
MIN_IP_HASH_KEY_LENGTH = 16


@dataclass(frozen=True)
class PrivacyConfig:
    """How silver and gold store IP addresses (`privacy.*`): as they came, truncated or keyed-hashed."""

    ip_anonymisation: str = "none"
    ip_hash_key: str | None = field(default=None, repr=False)

    @property
    def anonymises(self) -> bool:
        return self.ip_anonymisation != "none"


@dataclass(frozen=True)
class ApiConfig:
    """`lakehouse serve`: where it listens, its key (from the environment), the largest `limit`."""

    host: str
    port: int
    api_key: str | None = field(repr=False)
    max_limit: int
    # The ingest routes: bounds per request, and the token bucket of each client.
    ingest_max_ips: int = 1000
    ingest_max_body_bytes: int = 65536
    ingest_rate_per_second: float = 50.0
    ingest_burst: int = 100
    # Requests with a wrong or missing key, per client address: more are answered 429.
    auth_failure_rate_per_second: float = 1.0
    auth_failure_burst: int = 10
    # Addresses of reverse proxies whose X-Forwarded-For is believed (uvicorn's
    # forwarded_allow_ips); None: none, the client address is the connection's.
    trusted_proxies: str | None = None
    # How long /health reuses its last answer (it is open to anyone).
    health_cache_seconds: float = 5.0


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    region: str
    access_key: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)


@dataclass(frozen=True)
class Config:
    profile: str
    root: Path
    warehouse: str
    checkpoints: str
    access_logs: AccessLogConfig
    quality: QualityConfig
    geoip_database: str | None
    top_ips_per_day: int
    export: ExportConfig
    kafka: KafkaConfig
    s3: S3Config
    api: ApiConfig
    web_events: WebEventsConfig
    poll: PollConfig
    ip_events: IpEventsConfig
    spark_master: str
    app_name: str
    # The packed Python environment executors run (cluster profile), or None: executors
    # use the driver's interpreter (local mode).
    executor_env: Path | None = None
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    @property
    def jars_dir(self) -> Path:
        return self.root / ".jars"

    def table_path(self, layer: str, table: str) -> str:
        """Location of `<warehouse>/<layer>/<table>`."""
        if layer not in ("bronze", "silver", "gold", "quarantine", "_meta"):
            raise ConfigError(f"unknown layer {layer!r}")
        return f"{self.warehouse.rstrip('/')}/{layer}/{table}"

    def checkpoint(self, name: str) -> str:
        return f"{self.checkpoints.rstrip('/')}/{name}"

    def with_warehouse(self, warehouse: str) -> Config:
        """A copy pointed at another warehouse (checkpoints and SQLite export follow it)."""
        return _build(self.profile, self.root, _merge(self._raw, {"warehouse": warehouse}))

    _raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(raw: dict, environ: dict[str, str]) -> dict:
    out = copy.deepcopy(raw)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        top_level = name[len(ENV_PREFIX):].lower() in out
        if "__" not in name and not top_level:
            continue  # e.g. LAKEHOUSE_EXPORT_PASSWORD: a secret read via *_env, not an override
        keys = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(keys[:-1])} is not a section")
        node[keys[-1]] = env_value(value)
    return out


_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def env_value(text: str) -> Any:
    """An environment override's value: a string unless it is plainly a number, a boolean or
    null (`""`, `null`, `~`). Never YAML: a log format such as `%h %l ... %D` is text."""
    if text.strip() in ("", "null", "~"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _get(raw: dict, dotted: str) -> Any:
    node: Any = raw
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"missing configuration key {dotted!r} (conf/lakehouse.yaml)")
        node = node[key]
    return node


def _optional_path(root: Path, value: Any) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value))
    return path if path.is_absolute() else root / path


def _optional_int(value: Any, key: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number or null, got {value!r}") from None


def _log_format(value: Any) -> str:
    """The configured Apache LogFormat, checked now: an empty or unknown one fails before any job writes."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"access_logs.log_format must be an Apache LogFormat string, got {value!r}")
    from apachelogs import LogParser

    try:
        LogParser(value)
    except Exception as error:  # apachelogs raises its own errors for unknown directives
        raise ConfigError(f"access_logs.log_format {value!r}: {type(error).__name__}: {error}") from None
    if not re.search(r"%[<>]?(?:\{[^}]*\})?t", value):
        raise ConfigError(f"access_logs.log_format {value!r} has no request time (%t): silver needs one")
    return value


def _positive(value: Any, key: str, kind: type = int) -> Any:
    """`value` as a `kind` above zero; ConfigError naming `key` otherwise."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{key} must be a number above 0, got {value!r}")
    return number


def _ip_events(profile: str, root: Path, raw: dict) -> IpEventsConfig:
    sink = _landing_or_kafka(raw, "ip_events.sink", profile)
    landing = _optional_path(root, _get(raw, "ip_events.landing"))
    if sink == "landing" and landing is None:
        raise ConfigError("ip_events.landing must name a folder when ip_events.sink is landing")
    return IpEventsConfig(
        sink=sink,
        landing=landing,
        delivery_timeout_seconds=_positive(
            _get(raw, "ip_events.delivery_timeout_seconds"), "ip_events.delivery_timeout_seconds", float
        ),
        roll_seconds=_positive(_get(raw, "ip_events.roll_seconds"), "ip_events.roll_seconds", float),
    )


def _privacy(raw: dict, env) -> PrivacyConfig:
    section = raw.get("privacy") or {}
    mode = str(section.get("ip_anonymisation") or "none").lower()
    if mode not in IP_ANONYMISATIONS:
        raise ConfigError(f"privacy.ip_anonymisation must be one of {', '.join(IP_ANONYMISATIONS)}, got {mode!r}")
    key_env = str(section.get("ip_hash_key_env") or "LAKEHOUSE_IP_HASH_KEY")
    key = env.get(key_env) or None
    if mode == "hash" and (key is None or len(key) < MIN_IP_HASH_KEY_LENGTH):
        found = "is not set" if key is None else f"has {len(key)} characters"
        raise ConfigError(
            f"privacy.ip_anonymisation is hash: the key comes from the env var {key_env}, which {found} "
            f"(give a secret of {MIN_IP_HASH_KEY_LENGTH}+ characters, and keep it: another key gives other hashes)"
        )
    return PrivacyConfig(mode, key)


def _build(profile: str, root: Path, raw: dict, environ: dict[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    warehouse = str(_get(raw, "warehouse"))
    if "://" not in warehouse:
        warehouse = str((root / warehouse).resolve()) if not Path(warehouse).is_absolute() else warehouse
    checkpoints = raw.get("checkpoints") or f"{warehouse.rstrip('/')}/_checkpoints"
    url = _get(raw, "export.url")
    if url and "{warehouse}" in url:
        if "://" in warehouse:
            raise ConfigError("export.url uses {warehouse} but the warehouse is not a local folder")
        url = url.replace("{warehouse}", warehouse)
    ddl = Path(_get(raw, "export.schema_ddl"))
    kafka = _get(raw, "kafka")
    s3 = _get(raw, "s3")
    return Config(
        profile=profile,
        root=root,
        warehouse=warehouse,
        checkpoints=checkpoints,
        access_logs=AccessLogConfig(
            log_format=_log_format(_get(raw, "access_logs.log_format")),
            also_accept_common=bool(_get(raw, "access_logs.also_accept_common")),
        ),
        quality=QualityConfig(
            min_event_date=str(_get(raw, "quality.min_event_date")),
            max_future_hours=int(_get(raw, "quality.max_future_hours")),
            rules_file=_optional_path(root, _get(raw, "quality").get("rules")),
        ),
        geoip_database=_get(raw, "geoip.database"),
        top_ips_per_day=int(_get(raw, "gold.top_ips_per_day")),
        export=ExportConfig(
            url=url,
            user=_get(raw, "export.user"),
            password=env.get(str(_get(raw, "export.password_env"))),
            schema_ddl=ddl if ddl.is_absolute() else root / ddl,
        ),
        kafka=KafkaConfig(
            bootstrap_servers=str(kafka["bootstrap_servers"]),
            topics=dict(_get(raw, "kafka.topics")),
            starting_offsets=str(_get(raw, "kafka.starting_offsets")),
            max_offsets_per_trigger=int(_get(raw, "kafka.max_offsets_per_trigger")),
            fail_on_data_loss=bool(_get(raw, "kafka.fail_on_data_loss")),
            trigger=str(_get(raw, "kafka.trigger")),
            metrics_port=_optional_int(kafka.get("metrics_port"), "kafka.metrics_port"),
        ),
        s3=S3Config(
            endpoint=str(s3["endpoint"]),
            region=str(_get(raw, "s3.region")),
            access_key=env.get(str(_get(raw, "s3.access_key_env"))),
            secret_key=env.get(str(_get(raw, "s3.secret_key_env"))),
        ),
        api=ApiConfig(
            host=str(_get(raw, "api.host")),
            port=int(_get(raw, "api.port")),
            api_key=env.get(str(_get(raw, "api.api_key_env"))) or None,
            max_limit=int(_get(raw, "api.max_limit")),
            ingest_max_ips=_positive(_get(raw, "api.ingest_max_ips"), "api.ingest_max_ips"),
            ingest_max_body_bytes=_positive(_get(raw, "api.ingest_max_body_bytes"), "api.ingest_max_body_bytes"),
            ingest_rate_per_second=_positive(_get(raw, "api.ingest_rate_per_second"), "api.ingest_rate_per_second", float),
            ingest_burst=_positive(_get(raw, "api.ingest_burst"), "api.ingest_burst"),
            auth_failure_rate_per_second=_positive(
                _get(raw, "api.auth_failure_rate_per_second"), "api.auth_failure_rate_per_second", float),
            auth_failure_burst=_positive(_get(raw, "api.auth_failure_burst"), "api.auth_failure_burst"),
            trusted_proxies=str(_get(raw, "api.trusted_proxies") or "").strip() or None,
            health_cache_seconds=float(_get(raw, "api.health_cache_seconds")),
        ),
        web_events=WebEventsConfig(
            session_gap_seconds=int(_get(raw, "web_events.session_gap_seconds")),
            lateness_seconds=int(_get(raw, "web_events.lateness_seconds")),
            trigger=str(_get(raw, "web_events.trigger")),
            processed_events_topic=_get(raw, "web_events").get("processed_events_topic") or None,
            source=_landing_or_kafka(raw, "web_events.source", profile),
            landing=_optional_path(root, _get(raw, "web_events.landing")),
        ),
        poll=PollConfig(
            url=str(_get(raw, "poll.url")),
            interval_seconds=float(_get(raw, "poll.interval_seconds")),
            connect_timeout_seconds=float(_get(raw, "poll.connect_timeout_seconds")),
            read_timeout_seconds=float(_get(raw, "poll.read_timeout_seconds")),
            max_retries=int(_get(raw, "poll.max_retries")),
            symbol_field=str(_get(raw, "poll.symbol_field")),
            price_field=str(_get(raw, "poll.price_field")),
            time_field=str(_get(raw, "poll.time_field")),
            landing=_optional_path(root, _get(raw, "poll.landing")),
            sink=_landing_or_kafka(raw, "poll.sink", profile),
        ),
        ip_events=_ip_events(profile, root, raw),
        spark_master=str(_get(raw, "spark.master")),
        app_name=str(_get(raw, "spark.app_name")),
        executor_env=_optional_path(root, _get(raw, "spark").get("executor_env")),
        privacy=_privacy(raw, env),
        _raw=raw,
    )


def load_config(
    profile: str | None = None,
    overrides: dict | None = None,
    environ: dict[str, str] | None = None,
    root: Path | None = None,
) -> Config:
    """Read conf/lakehouse.yaml for `profile` (default: $LAKEHOUSE_PROFILE or local)."""
    env = dict(os.environ if environ is None else environ)
    root = root or project_root()
    profile = profile or env.get("LAKEHOUSE_PROFILE") or "local"
    if profile not in PROFILES:
        raise ConfigError(f"LAKEHOUSE_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
    doc = yaml.safe_load((root / "conf" / "lakehouse.yaml").read_text())
    if "base" not in doc:
        raise ConfigError("conf/lakehouse.yaml: missing the 'base' section")
    raw = _merge(doc["base"], doc.get(profile) or {})
    env_only = {k: v for k, v in env.items() if k not in ("LAKEHOUSE_PROFILE", "LAKEHOUSE_HOME")}
    raw = _env_overrides(raw, env_only)
    raw = _merge(raw, overrides or {})
    return _build(profile, root, raw, env)


__all__ = ["Config", "ConfigError", "load_config", "project_root"]
