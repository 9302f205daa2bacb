"""Configuration: `conf/lakehouse.yaml` read once into a frozen, typed object.

The profile comes from LAKEHOUSE_PROFILE (local | services | cluster | compose). Any leaf can
be overridden with LAKEHOUSE_<SECTION>__<KEY>; secrets only ever come from the environment
variables the `*_env` keys name.

pydantic-settings reads and types it: the file's `base` section with the profile's merged
over it, then the environment (`LAKEHOUSE_` prefix, `__` between nested keys), then the
caller's overrides. The sections are plain frozen dataclasses (what jobs and executors
see); what depends on the profile, the project folder or a secret is resolved after
(`_resolve`). A wrong value fails when the config is read, naming its key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from lakehouse.feeds import FEEDS, RAW_NAMES

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


# Field types with their checks. A check raises ValueError with what follows the key in
# the message ("must be ..."); `load_config` puts the key in front.
T = TypeVar("T")


def _blank_is_none(value: Any) -> Any:
    """`""`, `null` and `~` are no value (an environment variable can only say it in text)."""
    return None if isinstance(value, str) and value.strip() in ("", "null", "~") else value


def _above_zero(kind: type) -> BeforeValidator:
    """`kind(value)` when it is above zero; "must be a number above 0" otherwise."""

    def check(value: Any) -> Any:
        try:
            number = None if isinstance(value, bool) else kind(value)
        except (TypeError, ValueError):
            number = None
        if number is None or number <= 0:
            raise ValueError(f"must be a number above 0, got {value!r}")
        return number

    return BeforeValidator(check)


Maybe = Annotated[T | None, BeforeValidator(_blank_is_none)]
PositiveInt = Annotated[int, _above_zero(int)]
PositiveFloat = Annotated[float, _above_zero(float)]
LANDING_OR_KAFKA = ("auto", "landing", "kafka")


def _landing_or_kafka(value: Any) -> str:
    """`landing`, `kafka`, or `auto` (resolved by profile: landing in the local profile, whose
    embedded default has no broker, kafka in every other)."""
    text = str(value).lower()
    if text not in LANDING_OR_KAFKA:
        raise ValueError(f"must be one of {', '.join(LANDING_OR_KAFKA)}, got {text!r}")
    return text


LandingOrKafka = Annotated[str, BeforeValidator(_landing_or_kafka)]


def _log_format(value: Any) -> str:
    """The configured Apache LogFormat, checked now: an empty or unknown one fails before any job writes."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be an Apache LogFormat string, got {value!r}")
    from apachelogs import LogParser

    try:
        LogParser(value)
    except Exception as error:  # apachelogs raises its own errors for unknown directives
        raise ValueError(f"{value!r}: {type(error).__name__}: {error}") from None
    if not re.search(r"%[<>]?(?:\{[^}]*\})?t", value):
        raise ValueError(f"{value!r} has no request time (%t): silver needs one")
    return value


@dataclass(frozen=True)
class AccessLogConfig:
    log_format: Annotated[str, BeforeValidator(_log_format)]
    also_accept_common: bool


@dataclass(frozen=True)
class QualityConfig:
    min_event_date: str
    max_future_hours: int
    # conf/quality.yaml: the rules of `lakehouse check` (the file's key: `rules`).
    rules_file: Annotated[Maybe[Path], Field(validation_alias="rules")] = None


def _raw_datasets(value: Any) -> tuple[str, ...]:
    """The datasets named, as a list or (from the environment) text: `access_logs,web_events`,
    `["access_logs"]`; none (`[]`, empty, null) is the default, off."""
    value = _blank_is_none(value)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v.strip(" \"'") for v in value.strip().strip("[]").split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of datasets ({', '.join(RAW_NAMES)}), got {value!r}")
    names = tuple(dict.fromkeys(v for v in value if v.strip()))
    if unknown := [v for v in names if v not in RAW_NAMES]:
        raise ValueError(f"must list datasets among {', '.join(RAW_NAMES)}, got {', '.join(map(repr, unknown))}")
    return names


@dataclass(frozen=True)
class ExportConfig:
    url: Maybe[str]
    user: Maybe[str]
    password: str | None = field(default=None, repr=False)  # from the env var `password_env`
    schema_ddl: Path = Path("conf/sql/gold_tables.sql")
    password_env: str = "LAKEHOUSE_EXPORT_PASSWORD"
    # Datasets whose silver rows are also exported one for one (docs/raw-rows.md); () is off.
    raw_rows: Annotated[tuple[str, ...], BeforeValidator(_raw_datasets)] = ()
    raw_ddl: Path = Path("conf/sql/raw_tables.sql")

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
    max_offsets_per_trigger: PositiveInt
    fail_on_data_loss: bool
    trigger: str


@dataclass(frozen=True)
class WebEventsConfig:
    """Web events: sessions, and the real-time windows of `lakehouse stream-windows`."""

    session_gap_seconds: PositiveInt
    lateness_seconds: int
    trigger: str
    # Kafka topic the enriched events are also published to; None: not published.
    processed_events_topic: Maybe[str] = None
    # `stream-windows` also upserts each closed window and session into export.url as it closes.
    live_export: bool = True
    # Where the feed lands and its bronze job reads (`landing` files or `kafka`), resolved
    # from `auto` by profile; `landing` is the file or folder of the files.
    source: LandingOrKafka = "landing"
    landing: Maybe[Path] = None


@dataclass(frozen=True)
class PollConfig:
    """`lakehouse poll`: the endpoint, its timing, and where a tick's fields live."""

    url: str
    interval_seconds: PositiveFloat
    connect_timeout_seconds: PositiveFloat
    read_timeout_seconds: PositiveFloat
    max_retries: int
    symbol_field: str
    price_field: str
    time_field: str
    # Embedded default (no Kafka): the folder the raw responses are written to as JSON lines.
    landing: Maybe[Path]
    # Where the poller sends (`landing` or `kafka`) and the bronze job reads, from `auto` by profile.
    sink: LandingOrKafka = "landing"


# The feeds whose producer (a file drop, the poller, the collector) lands either files or
# Kafka records: one setting each decides both where it lands and where bronze reads.
FEED_SETTINGS = {name: feed.landing_setting for name, feed in FEEDS.items() if feed.landing_setting}


@dataclass(frozen=True)
class IpEventsConfig:
    """The IP collector of `lakehouse serve`: where accepted IPs go."""

    # `landing` or `kafka`; the configured `auto` is resolved by profile (landing for local).
    sink: LandingOrKafka
    # Embedded default (no Kafka): the folder the accepted IPs are written to as JSON lines.
    landing: Maybe[Path]
    delivery_timeout_seconds: PositiveFloat
    # A landing file per this many seconds (hidden while written, then renamed).
    roll_seconds: PositiveFloat = 60.0


IP_ANONYMISATIONS = ("none", "truncate", "hash")
MIN_IP_HASH_KEY_LENGTH = 16


def _ip_anonymisation(value: Any) -> str:
    mode = str(value or "none").lower()
    if mode not in IP_ANONYMISATIONS:
        raise ValueError(f"must be one of {', '.join(IP_ANONYMISATIONS)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class PrivacyConfig:
    """How silver and gold store IP addresses (`privacy.*`): as they came, truncated or keyed-hashed."""

    ip_anonymisation: Annotated[str, BeforeValidator(_ip_anonymisation)] = "none"
    ip_hash_key: str | None = field(default=None, repr=False)  # from the env var `ip_hash_key_env`
    ip_hash_key_env: Annotated[str, BeforeValidator(lambda v: v or "LAKEHOUSE_IP_HASH_KEY")] = "LAKEHOUSE_IP_HASH_KEY"

    @property
    def anonymises(self) -> bool:
        return self.ip_anonymisation != "none"


@dataclass(frozen=True)
class ApiConfig:
    """`lakehouse serve`: where it listens, its key (from the environment), the largest `limit`."""

    host: str
    port: int
    api_key: str | None = field(default=None, repr=False)  # from the env var `api_key_env`
    max_limit: PositiveInt = 1000
    # The ingest routes: bounds per request, and the token bucket of each client.
    ingest_max_ips: PositiveInt = 1000
    ingest_max_body_bytes: PositiveInt = 65536
    ingest_rate_per_second: PositiveFloat = 50.0
    ingest_burst: PositiveInt = 100
    # Requests with a wrong or missing key, per client address: more are answered 429.
    auth_failure_rate_per_second: PositiveFloat = 1.0
    auth_failure_burst: PositiveInt = 10
    # Addresses of reverse proxies whose X-Forwarded-For is believed (uvicorn's
    # forwarded_allow_ips); None: none, the client address is the connection's.
    trusted_proxies: Annotated[Maybe[str], AfterValidator(lambda v: (v or "").strip() or None)] = None
    # How long /health reuses its last answer (it is open to anyone).
    health_cache_seconds: float = 5.0
    api_key_env: str = "LAKEHOUSE_API_KEY"


@dataclass(frozen=True)
class SuperviseConfig:
    """`lakehouse supervise`: the long-running sources it keeps running, and its restart delays."""

    # name -> the `lakehouse` command line it runs (`poll`, `serve --port 8000`).
    services: dict[str, str] = field(default_factory=dict)
    # After an exit the delay before the restart doubles with each quick exit in a row, from
    # `restart_delay_seconds` up to `max_restart_delay_seconds`; a run that lasted
    # `healthy_after_seconds` starts the count again.
    restart_delay_seconds: PositiveFloat = 1.0
    max_restart_delay_seconds: PositiveFloat = 60.0
    healthy_after_seconds: PositiveFloat = 60.0
    # How long a stopped service may take to exit after SIGTERM before it is killed.
    stop_timeout_seconds: PositiveFloat = 20.0


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus endpoints of the long-running streaming jobs (`lakehouse serve` has its own
    /metrics); conf/prometheus/ scrapes them and alerts on them."""

    # The address the endpoints listen on: loopback natively (the figures name topics and
    # have no key); compose listens on the containers' network, which it does not publish.
    host: str = "127.0.0.1"
    # A port per job; None: that job has no endpoint (each job's --metrics-port overrides).
    stream_port: Maybe[int] = None
    stream_windows_port: Maybe[int] = None
    mirror_port: Maybe[int] = None
    # dataset -> the longest a feed may land nothing before the FeedNotLanding alert fires
    # (served by `lakehouse serve` as lakehouse_feed_landing_interval_seconds).
    landing_interval_minutes: dict[str, PositiveFloat] = field(default_factory=dict)


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    region: str
    access_key: str | None = field(default=None, repr=False)  # from the env var `access_key_env`
    secret_key: str | None = field(default=None, repr=False)  # from the env var `secret_key_env`
    access_key_env: str = "LAKEHOUSE_S3_ACCESS_KEY"
    secret_key_env: str = "LAKEHOUSE_S3_SECRET_KEY"


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
    # Independent steps of one job (feeds, gold tables) run on this many driver threads.
    driver_threads: int = 2
    supervise: SuperviseConfig = field(default_factory=SuperviseConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # The warehouse-relative settings as written (checkpoints, export.url), for with_warehouse.
    _placed_from: tuple[str | None, str | None] = field(default=(None, None), repr=False, compare=False)

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
        checkpoints, url = self._placed_from
        return replace(self, **_placed(self.root, warehouse, checkpoints, url, self.export))


# A number where text is expected (`trigger: 5`, a topic named 2024) is taken as its text.
for _section in (AccessLogConfig, QualityConfig, ExportConfig, KafkaConfig, WebEventsConfig, PollConfig,
                 IpEventsConfig, PrivacyConfig, ApiConfig, S3Config, SuperviseConfig, MetricsConfig):  # fmt: skip
    _section.__pydantic_config__ = ConfigDict(coerce_numbers_to_str=True)


# The file's own sections that the Config flattens (gold.top_ips_per_day -> top_ips_per_day).
class _Geoip(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    database: Maybe[str] = None


class _Gold(BaseModel):
    top_ips_per_day: PositiveInt


class _Spark(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    master: str
    app_name: str
    executor_env: Maybe[Path] = None
    driver_threads: PositiveInt = 2


class _Environ(EnvSettingsSource):
    """The environment source over a given mapping instead of os.environ, so a caller (and a
    test) can say exactly which environment a config is read from. pydantic-settings reads
    os.environ in `_load_env_vars` and offers no parameter for another mapping."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _Document(PydanticBaseSettingsSource):
    """A section of conf/lakehouse.yaml, already read (`base`, or the profile's over it:
    pydantic-settings merges the sources key by key)."""

    def __init__(self, settings_cls: type[BaseSettings], section: dict) -> None:
        self._section = section
        super().__init__(settings_cls)

    def get_field_value(self, field, field_name):  # the whole section is returned by __call__
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._section


class _Settings(BaseSettings):
    """conf/lakehouse.yaml's layout, typed; sources in priority order: overrides, env, file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore", frozen=True, coerce_numbers_to_str=True
    )

    warehouse: str
    checkpoints: Maybe[str] = None
    access_logs: AccessLogConfig
    quality: QualityConfig
    geoip: _Geoip = _Geoip()
    gold: _Gold
    web_events: WebEventsConfig
    poll: PollConfig
    ip_events: IpEventsConfig
    privacy: PrivacyConfig = PrivacyConfig()
    export: ExportConfig
    kafka: KafkaConfig
    s3: S3Config
    api: ApiConfig
    spark: _Spark
    supervise: SuperviseConfig = SuperviseConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="before")
    @classmethod
    def _null_sections_are_empty(cls, data: Any) -> Any:
        # `gold:` with nothing under it: its keys are then reported missing one by one.
        if not isinstance(data, dict):
            return data
        sections = set(cls.model_fields) - {"warehouse", "checkpoints"}
        return {key: {} if value is None and key in sections else value for key, value in data.items()}

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        environ, base, profile = _SOURCES.get()
        return init_settings, _Environ(settings_cls, environ), _Document(settings_cls, profile), _Document(settings_cls, base)


# What one `load_config` call reads (environment, base section, profile section), handed to
# settings_customise_sources, which takes no arguments of ours.
_SOURCES: ContextVar[tuple[Mapping[str, str], dict, dict]] = ContextVar("lakehouse_config_sources")


def _path(root: Path, value: Path | None) -> Path | None:
    return value if value is None or value.is_absolute() else root / value


def _placed(root: Path, warehouse: str, checkpoints: str | None, url: str | None, export: ExportConfig) -> dict:
    """The warehouse (made absolute when local), the checkpoints under it unless set, and an
    export url's `{warehouse}` filled in."""
    if "://" not in warehouse and not Path(warehouse).is_absolute():
        warehouse = str((root / warehouse).resolve())
    if url and "{warehouse}" in url:
        if "://" in warehouse:
            raise ConfigError("export.url uses {warehouse} but the warehouse is not a local folder")
        export = replace(export, url=url.replace("{warehouse}", warehouse))
    return {
        "warehouse": warehouse,
        "checkpoints": checkpoints or f"{warehouse.rstrip('/')}/_checkpoints",
        "export": export,
    }


def _resolve(profile: str, root: Path, settings: _Settings, env: Mapping[str, str]) -> Config:
    """The Config of `settings`: `auto` landings by profile, paths from the project folder,
    secrets from the environment variables the `*_env` keys name."""

    def auto(value: str) -> str:
        return ("landing" if profile == "local" else "kafka") if value == "auto" else value

    privacy = settings.privacy
    key = env.get(privacy.ip_hash_key_env) or None
    if privacy.ip_anonymisation == "hash" and (key is None or len(key) < MIN_IP_HASH_KEY_LENGTH):
        found = "is not set" if key is None else f"has {len(key)} characters"
        raise ConfigError(
            f"privacy.ip_anonymisation is hash: the key comes from the env var {privacy.ip_hash_key_env}, which {found} "
            f"(give a secret of {MIN_IP_HASH_KEY_LENGTH}+ characters, and keep it: another key gives other hashes)"
        )
    ip_events = replace(settings.ip_events, sink=auto(settings.ip_events.sink), landing=_path(root, settings.ip_events.landing))
    if ip_events.sink == "landing" and ip_events.landing is None:
        raise ConfigError("ip_events.landing must name a folder when ip_events.sink is landing")
    if unknown := sorted(set(settings.metrics.landing_interval_minutes) - set(FEEDS)):
        raise ConfigError(f"metrics.landing_interval_minutes: unknown feed {', '.join(unknown)} (feeds: {', '.join(FEEDS)})")
    export = replace(
        settings.export,
        password=env.get(settings.export.password_env),
        schema_ddl=_path(root, settings.export.schema_ddl),
        raw_ddl=_path(root, settings.export.raw_ddl),
    )
    s3 = settings.s3
    return Config(
        profile=profile,
        root=root,
        access_logs=settings.access_logs,
        quality=replace(settings.quality, rules_file=_path(root, settings.quality.rules_file)),
        geoip_database=settings.geoip.database,
        top_ips_per_day=settings.gold.top_ips_per_day,
        kafka=settings.kafka,
        s3=replace(s3, access_key=env.get(s3.access_key_env), secret_key=env.get(s3.secret_key_env)),
        api=replace(settings.api, api_key=env.get(settings.api.api_key_env) or None),
        web_events=replace(settings.web_events, source=auto(settings.web_events.source),
                           landing=_path(root, settings.web_events.landing)),
        poll=replace(settings.poll, sink=auto(settings.poll.sink), landing=_path(root, settings.poll.landing)),
        ip_events=ip_events,
        spark_master=settings.spark.master,
        app_name=settings.spark.app_name,
        executor_env=_path(root, settings.spark.executor_env),
        driver_threads=settings.spark.driver_threads,
        supervise=settings.supervise,
        metrics=settings.metrics,
        privacy=replace(privacy, ip_hash_key=key),
        _placed_from=(settings.checkpoints, settings.export.url),
        **_placed(root, settings.warehouse, settings.checkpoints, settings.export.url, export),
    )


def _config_error(error: ValidationError) -> ConfigError:
    """The first problem as one line naming its key (`poll.sink must be one of ...`)."""
    first = error.errors(include_url=False)[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return ConfigError(f"missing configuration key {key!r} (conf/lakehouse.yaml)")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ValueError):
        return ConfigError(f"{key} {cause}")
    return ConfigError(f"{key}: {first['msg']}, got {first['input']!r}")


def load_config(
    profile: str | None = None,
    overrides: dict | None = None,
    environ: Mapping[str, str] | None = None,
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
    token = _SOURCES.set((env, doc["base"], doc.get(profile) or {}))
    try:
        settings = _Settings(**(overrides or {}))
    except ValidationError as error:
        raise _config_error(error) from None
    finally:
        _SOURCES.reset(token)
    return _resolve(profile, root, settings, env)


__all__ = ["Config", "ConfigError", "load_config", "project_root"]
