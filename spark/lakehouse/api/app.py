"""The analytics API over the exported gold tables (FastAPI), built by `create_app(config)`,
and the IP collector's ingest routes (`api/ingest.py`).

Reads the database `lakehouse export` writes (SQLite by default, PostgreSQL in the services
profile) with a plain Python driver: no Spark. Every analytics route takes `from`, `to`
(inclusive ISO dates, both optional) and `limit` (1..`api.max_limit`); a database that
cannot answer is a 503 with a one-line reason. With an API key configured every route but
`/health` needs it in the `X-API-Key` header (the ingest routes included).
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lakehouse.api import ingest
from lakehouse.api.metrics import (
    ApiMetrics,
    IngestMetrics,
    PipelineCollector,
    RequestMetricsMiddleware,
)
from lakehouse.config import Config
from lakehouse.io import gold_db, ip_sink
from lakehouse.io.job_runs import JobRunsReader

log = logging.getLogger("lakehouse.api")

API_KEY_HEADER = "X-API-Key"
# A key guards every route, and with it the API may listen beyond loopback: no short ones.
MIN_API_KEY_LENGTH = 32
DEFAULT_LIMIT = 10
OPEN_PATHS = frozenset({"/health"})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Window:
    """The report dates and row count an analytics request asks for."""

    start: date | None
    end: date | None
    limit: int

    def echo(self) -> dict[str, Any]:
        return {"from": _iso(self.start), "to": _iso(self.end), "limit": self.limit}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _invalid(field: str, value: str, message: str) -> RequestValidationError:
    """A 422 in FastAPI's own error shape, for checks its type system cannot express."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


def _parse_date(field: str, value: str | None) -> date | None:
    if value is None:
        return None
    # Strict YYYY-MM-DD: pydantic's lax date type would also take "1709251200" (epoch seconds).
    if not _ISO_DATE.fullmatch(value):
        raise _invalid(field, value, f"`{field}` must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise _invalid(field, value, f"`{field}` is not a real date ({value!r}: {error})") from None


def window_dependency(max_limit: int) -> Callable[..., Window]:
    """The `from`/`to`/`limit` query parameters, validated, as a FastAPI dependency."""

    def window(
        from_: str | None = Query(None, alias="from", description="first report date, inclusive (YYYY-MM-DD)", examples=["2024-03-01"]),
        to: str | None = Query(None, description="last report date, inclusive (YYYY-MM-DD)", examples=["2024-03-31"]),
        limit: int = Query(min(DEFAULT_LIMIT, max_limit), ge=1, le=max_limit, description=f"rows to return, 1..{max_limit}"),
    ) -> Window:
        start, end = _parse_date("from", from_), _parse_date("to", to)
        if start and end and start > end:
            raise _invalid("to", to, f"`to` ({to}) is before `from` ({from_})")
        return Window(start, end, limit)

    return window


def weak_key(key: str | None) -> str | None:
    """Why `key` may not guard the API (too short), or None."""
    if key is not None and len(key) < MIN_API_KEY_LENGTH:
        return (
            f"the API key has {len(key)} characters, at least {MIN_API_KEY_LENGTH} are needed "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return None


class ApiKeyMiddleware:
    """Every path but /health needs `X-API-Key` (compared in constant time) when a key is set;
    `Authorization: Bearer <key>` is taken too (what Prometheus's `authorization` sends).

    Failed attempts are limited per client address (a token bucket, `failures`): past it,
    requests are answered 429 before their key is looked at, so keys cannot be guessed at
    the server's speed.
    """

    def __init__(self, app, api_key: str, failures: ingest.TokenBuckets) -> None:
        self.app = app
        self.key = api_key.encode()
        self.failures = failures

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            client = scope["client"][0] if scope.get("client") else "unknown"
            wait = self.failures.waiting(client)
            if not wait:
                headers = dict(scope["headers"])
                bearer = headers.get(b"authorization", b"")
                given = headers.get(API_KEY_HEADER.lower().encode()) or (bearer[7:] if bearer[:7].lower() == b"bearer " else b"")
                if hmac.compare_digest(given, self.key):
                    await self.app(scope, receive, send)
                    return
                wait = self.failures.take(client)
            if wait:
                seconds = max(1, math.ceil(wait))
                response = JSONResponse({"detail": f"too many requests without the right API key; retry in {seconds} s"},
                                        status_code=429, headers={"Retry-After": str(seconds)})
            else:
                message = "missing X-API-Key header" if not given else "wrong API key"
                response = JSONResponse({"detail": message}, status_code=401, headers={"WWW-Authenticate": API_KEY_HEADER})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(config: Config, job_runs_ttl: float = 15.0, sink: ip_sink.IpSink | None = None) -> FastAPI:
    """The API for `config`: its export target, its warehouse's job runs, its API key, and
    the sink of the ingested IPs (default: the one `ip_events.sink` names; closed with the app)."""
    if problem := weak_key(config.api.api_key):
        raise ValueError(problem)
    gold = gold_db.GoldReader(gold_db.database_from(config.export))
    sink = sink or ip_sink.sink_from(config)
    job_runs = JobRunsReader(config, ttl=job_runs_ttl)
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    intervals = {dataset: minutes * 60 for dataset, minutes in config.metrics.landing_interval_minutes.items()}
    registry.register(PipelineCollector(job_runs.rows, lambda: gold_db.freshness(gold), intervals))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        gold.close()
        sink.close()

    app = FastAPI(
        title="Lakehouse analytics",
        summary="Daily web-traffic and product aggregates from the exported gold tables; the IP collector.",
        version="1",
        lifespan=lifespan,
    )
    security = []
    if config.api.api_key:
        failures = ingest.TokenBuckets(config.api.auth_failure_rate_per_second, config.api.auth_failure_burst)
        app.add_middleware(ApiKeyMiddleware, api_key=config.api.api_key, failures=failures)
        # Declared for the OpenAPI schema (the "Authorize" button of /docs); the middleware enforces it.
        security = [Depends(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]
    # Added last, so it runs first (outermost): refused requests are counted too.
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    window = Depends(window_dependency(config.api.max_limit))
    sink_timeout = config.ip_events.delivery_timeout_seconds + ingest.SINK_GRACE_SECONDS
    ingest.install(app, config.api, sink, IngestMetrics(registry), sink_timeout, dependencies=security)

    @app.exception_handler(gold_db.GoldUnavailable)
    async def unavailable(_request: Request, error: gold_db.GoldUnavailable) -> JSONResponse:
        log.warning("503: %s", error)  # the whole reason for the operator; the client gets no host or path
        return JSONResponse({"detail": f"gold database unavailable: {error.public}"}, status_code=503)

    @app.get("/analytics/requests_per_endpoint", tags=["analytics"], dependencies=security)
    def requests_per_endpoint(w: Window = window) -> dict[str, Any]:
        """Requests per endpoint over the report dates, most requested first, with status
        classes, bytes and error rate ((4xx + 5xx) / requests)."""
        return w.echo() | {"rows": gold_db.requests_per_endpoint(gold, w.start, w.end, w.limit)}

    top_per_day = config.top_ips_per_day

    @app.get("/analytics/top_ips", tags=["analytics"], dependencies=security)
    def top_ips(w: Window = window) -> dict[str, Any]:
        """Client IPs by requests, summed from each day's top list (the top
        `gold.top_ips_per_day` of each day are all gold keeps). `days`: how many days of the
        window the IP made the list; `exact`: it made every one, so `requests` is all of its
        requests. Otherwise `requests` is a lower bound, and an IP that made no day's list is
        missing even if it leads the window (`bound` says so in every answer)."""
        return w.echo() | {
            "bound": f"summed from each day's top {top_per_day}: rows with exact=false are lower bounds, "
                     f"and IPs outside every day's top {top_per_day} are missing",
            "rows": gold_db.top_ips(gold, w.start, w.end, w.limit),
        }

    @app.get("/analytics/error_rate", tags=["analytics"], dependencies=security)
    def error_rate(w: Window = window) -> dict[str, Any]:
        """Error rate per day (the latest `limit` days, newest first) and over all the report dates."""
        return w.echo() | gold_db.error_rate(gold, w.start, w.end, w.limit)

    @app.get("/analytics/top_products", tags=["analytics"], dependencies=security)
    def top_products(w: Window = window) -> dict[str, Any]:
        """Products by views, most viewed first, with the time of the last view (UTC)."""
        return w.echo() | {"rows": gold_db.top_products(gold, w.start, w.end, w.limit)}

    @app.get("/analytics/countries", tags=["analytics"], dependencies=security)
    def countries(w: Window = window) -> dict[str, Any]:
        """Countries (GeoIP ISO codes, `(unknown)`) by product views."""
        return w.echo() | {"rows": gold_db.countries(gold, w.start, w.end, w.limit)}

    checked: dict[str, Any] = {}  # the last answer of /health and when it was made
    health_lock = threading.Lock()

    @app.get("/health", tags=["operations"])
    def health() -> JSONResponse:
        """Is the gold database reachable, and how fresh is what it holds (never needs a key;
        answered from the last check for `api.health_cache_seconds`)."""
        with health_lock:  # one check at a time: a flood of /health is not a flood of queries
            if time.monotonic() - checked.get("at", -math.inf) >= config.api.health_cache_seconds:
                try:
                    fresh = gold_db.freshness(gold)
                    checked["answer"] = ({"status": "ok", "database": gold.db.dialect, "gold": fresh}, 200)
                except gold_db.GoldUnavailable as error:
                    log.warning("health: %s", error)
                    checked["answer"] = ({"status": "unavailable", "database": gold.db.dialect, "detail": error.public}, 503)
                checked["at"] = time.monotonic()
            body, status = checked["answer"]
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", tags=["operations"], dependencies=security)
    def prometheus() -> Response:
        """Prometheus exposition: API requests and latencies, IPs ingested, pipeline runs, gold freshness."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
