"""The IP collector's routes (seed 000): `POST /ingest-ip` and `POST /ingest-ips`.

    curl -X POST localhost:8000/ingest-ip  -H 'Content-Type: application/json' -d '{"ip": "8.8.8.8"}'
    curl -X POST localhost:8000/ingest-ips -H 'Content-Type: application/json' -d '{"ips": ["8.8.8.8", "1.1.1.1"]}'

Each accepted IP becomes one record `{"ip", "received_at", "request_id"}` handed to an
`io.ip_sink` sink (Kafka topic or landing folder); the answer is 202 only once the sink
says the records are durable, 503 with the reason when it cannot. A request is checked in
this order, and the first failed check answers: the client's token bucket (429 with
`Retry-After`), the content type (415), the body size, counted as it streams in (413),
JSON (400), the body's shape (422), then each IP. `/ingest-ips` accepts the valid IPs of a
list and names each rejected one with its reason; a list with no valid IP is a 422.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from lakehouse.api.metrics import IngestMetrics
from lakehouse.config import ApiConfig
from lakehouse.io.ip_sink import IpSink, SinkUnavailable
from lakehouse.transforms.client_ip import NotAClientIp, client_ip

log = logging.getLogger("lakehouse.api.ingest")

JSON_TYPE = "application/json"
# Extra seconds a request waits for its sink beyond the sink's own delivery timeout, after
# which it answers 503 (the records may still land: delivery is at least once).
SINK_GRACE_SECONDS = 5.0
_HOST_NAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")
_DOTTED_QUAD = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


class Refused(Exception):
    """A request answered with a 4xx/5xx before (or instead of) accepting anything."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason  # a metrics label: one of a small fixed set
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"detail": self.detail, **self.extra}, status_code=self.status, headers=self.headers
        )


class BadIp(ValueError):
    """One value that is not an acceptable IP: `code` for metrics, `reason` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), "a number")


def canonical_ip(value: Any) -> str:
    """`value` as its canonical IP text (`ipaddress`'s compressed form), or BadIp saying why not.

    Stricter than `ipaddress` on purpose: surrounding whitespace, IPv6 zone ids (`fe80::1%eth0`,
    meaningful only on the sender's machine) and host names are refused, each with its reason;
    so are IPv4 octets with leading zeros (`010.0.0.1`: octal 8 to some parsers, decimal 10
    to others) and addresses no client has (`transforms.client_ip`: unspecified, multicast,
    broadcast). IPv4-mapped IPv6 (`::ffff:8.8.8.8`) is stored as the IPv4 address.
    """
    if not isinstance(value, str):
        raise BadIp("not_a_string", f"expected an IP address as a string, got {_json_type(value)}")
    if not value:
        raise BadIp("empty", "empty string, not an IP address")
    if value != value.strip():
        raise BadIp("whitespace", "surrounding whitespace: send the address alone")
    if "%" in value:
        raise BadIp(
            "zone_id",
            "IPv6 zone ids (`%` and an interface) are not accepted: send the address alone",
        )
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is not None:
        try:
            return client_ip(address)
        except NotAClientIp as error:
            raise BadIp(error.code, error.reason) from None
    quad = _DOTTED_QUAD.fullmatch(value)
    if (
        quad
        and all(int(o) <= 255 for o in quad.groups())
        and any(len(o) > 1 and o[0] == "0" for o in quad.groups())
    ):
        plain = ".".join(str(int(o)) for o in quad.groups())
        raise BadIp(
            "leading_zeros",
            f"IPv4 octets with leading zeros are ambiguous (octal or decimal?): write {plain}",
        )
    if _HOST_NAME.fullmatch(value):
        raise BadIp("hostname", "a host name, not an IP address: resolve it and send the address")
    raise BadIp("not_an_ip", "not an IPv4 or IPv6 address")


class TokenBuckets:
    """One token bucket per client: `rate` tokens a second, at most `burst` saved up.

    Hand-written: the libraries for this (slowapi, limits) are not installed, and a bucket
    is a dozen lines; it lives in this process's memory (one server; several replicas would
    each allow the rate). A bucket that has refilled is the same as no bucket, so when
    more than `max_clients` are tracked the full ones are dropped: memory stays bounded by
    the clients active within the last `burst / rate` seconds.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when `client` may go ahead (a token is spent), else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def waiting(self, client: str) -> float:
        """0 when `client` has a token left (none is spent), else the seconds until it has."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [
            c
            for c, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.rate >= self.burst
        ]
        for client in full:
            del self._buckets[client]


@dataclass(frozen=True)
class Limits:
    """The ingest routes' bounds per request (from `api.ingest_*`)."""

    max_ips: int
    max_body_bytes: int
    rate_per_second: float
    burst: int

    @classmethod
    def of(cls, api: ApiConfig) -> Limits:
        return cls(
            api.ingest_max_ips,
            api.ingest_max_body_bytes,
            api.ingest_rate_per_second,
            api.ingest_burst,
        )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is over `max_bytes`: a declared
    Content-Length is checked first, and the bytes are counted as they arrive (a chunked
    body declares nothing, and a declared length is only a claim)."""
    too_large = Refused(
        413, "too_large", f"request body over {max_bytes} bytes (api.ingest_max_body_bytes)"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The JSON document of `body`, or a 400 saying where it breaks."""
    try:
        return json.loads(body)
    except RecursionError:
        raise Refused(400, "not_json", "body is not usable JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, or bytes that are no Unicode text
        raise Refused(400, "not_json", f"body is not valid JSON: {error}") from None


def field_of(document: Any, name: str, example: str) -> Any:
    """`document[name]` of a JSON object holding exactly that field, else a 422."""
    if not isinstance(document, dict):
        raise Refused(
            422, "bad_shape", f"expected a JSON object like {example}, got {_json_type(document)}"
        )
    if name not in document:
        raise Refused(
            422, "bad_shape", f"missing field `{name}`: expected a JSON object like {example}"
        )
    unknown = sorted(k for k in document if k != name)
    if unknown:
        names = ", ".join(f"`{k}`" for k in unknown)
        raise Refused(
            422, "bad_shape", f"unknown field(s) {names}: expected only `{name}`, like {example}"
        )
    return document[name]


def ingest_router(
    api: ApiConfig, sink: IpSink, metrics: IngestMetrics, sink_timeout: float
) -> APIRouter:
    """The two ingest routes, bound to `sink`, their limits and counters."""
    limits = Limits.of(api)
    buckets = TokenBuckets(limits.rate_per_second, limits.burst)
    keyed = bool(api.api_key)
    router = APIRouter(tags=["ingest"])

    def client_of(request: Request) -> str:
        # The address (the connection's, or a trusted proxy's X-Forwarded-For: see `serve`),
        # and with API keys the key too: collectors sharing a key each have their bucket, and
        # one noisy collector does not get the others 429s.
        address = "addr:" + (request.client.host if request.client else "unknown")
        if keyed:
            key = hashlib.sha256(request.headers.get("x-api-key", "").encode()).hexdigest()[:16]
            return f"key:{key} {address}"
        return address

    async def read_document(request: Request) -> Any:
        wait = buckets.take(client_of(request))
        if wait:
            seconds = max(1, math.ceil(wait))  # Retry-After is whole seconds
            raise Refused(
                429,
                "rate_limited",
                f"too many requests: at most {limits.rate_per_second:g}/s with bursts of {limits.burst}; retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        given = request.headers.get("content-type", "")
        if given.split(";", 1)[0].strip().lower() != JSON_TYPE:
            raise Refused(
                415,
                "content_type",
                f"send the body as {JSON_TYPE}, got {given or 'no Content-Type'}",
            )
        return parse_json(await read_body(request, limits.max_body_bytes))

    async def store(route: str, ips: list[str]) -> str:
        """Hand the records of `ips` to the sink and wait until they are durable; the request id."""
        request_id = str(uuid.uuid4())
        received_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        records = [{"ip": ip, "received_at": received_at, "request_id": request_id} for ip in ips]
        try:
            future = sink.submit(records)
            # shield: a waiter that gives up must not cancel the write other requests share.
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), sink_timeout)
        except (SinkUnavailable, TimeoutError) as error:
            reason = str(error) or f"{sink.describe()} did not confirm within {sink_timeout:g} s"
            log.warning("503 for %d IPs: %s", len(ips), reason)
            metrics.rejected.labels(route, "sink_unavailable").inc(len(ips))
            raise Refused(
                503, "sink_unavailable", f"IPs not stored, retry later: {reason}"
            ) from None
        metrics.accepted.labels(route).inc(len(ips))
        return request_id

    def accepted(count: int, rejected: list[dict], request_id: str) -> JSONResponse:
        return JSONResponse(
            {"accepted": count, "rejected": rejected},
            status_code=202,
            headers={"X-Request-ID": request_id},
        )

    def refused(route: str, error: Refused) -> JSONResponse:
        if error.reason != "sink_unavailable":
            metrics.refused.labels(route, error.reason).inc()
        return error.response()

    @router.post(
        "/ingest-ip",
        status_code=202,
        openapi_extra=_body_schema({"ip": {"type": "string", "examples": ["8.8.8.8"]}}, "ip"),
        responses=_RESPONSES,
    )
    async def ingest_ip(request: Request) -> JSONResponse:
        """Collect one IP (IPv4 or IPv6) for geolocation."""
        route = "/ingest-ip"
        try:
            value = field_of(await read_document(request), "ip", '{"ip": "8.8.8.8"}')
            try:
                ip = canonical_ip(value)
            except BadIp as bad:
                metrics.rejected.labels(route, bad.code).inc()
                raise Refused(422, "bad_ip", f"ip {json.dumps(value)}: {bad.reason}") from None
            return accepted(1, [], await store(route, [ip]))
        except Refused as error:
            return refused(route, error)

    @router.post(
        "/ingest-ips",
        status_code=202,
        openapi_extra=_body_schema(
            {
                "ips": {
                    "type": "array",
                    "items": {"type": "string"},
                    "examples": [["8.8.8.8", "2001:4860:4860::8888"]],
                }
            },
            "ips",
        ),
        responses=_RESPONSES,
    )
    async def ingest_ips(request: Request) -> JSONResponse:
        """Collect a list of IPs: the valid ones are accepted, each other one is named with its reason."""
        route = "/ingest-ips"
        try:
            values = field_of(
                await read_document(request), "ips", '{"ips": ["8.8.8.8", "1.1.1.1"]}'
            )
            if not isinstance(values, list):
                raise Refused(
                    422,
                    "bad_shape",
                    f"`ips` must be a list of IP strings, got {_json_type(values)}",
                )
            if not values:
                raise Refused(422, "empty", "`ips` is empty: send at least one IP")
            if len(values) > limits.max_ips:
                metrics.rejected.labels(route, "too_many").inc(len(values))
                raise Refused(
                    422,
                    "too_many",
                    f"too many IPs: {len(values)} in one request, at most {limits.max_ips} (api.ingest_max_ips)",
                )
            good: list[str] = []
            rejected: list[dict] = []
            for value in values:
                try:
                    good.append(canonical_ip(value))
                except BadIp as bad:
                    metrics.rejected.labels(route, bad.code).inc()
                    rejected.append({"ip": value, "reason": bad.reason})
            if not good:
                raise Refused(422, "bad_ip", "no valid IP in `ips`", accepted=0, rejected=rejected)
            return accepted(len(good), rejected, await store(route, good))
        except Refused as error:
            return refused(route, error)

    return router


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": '`{"accepted": n, "rejected": [{"ip", "reason"}]}`: the accepted IPs are stored'
    },
    400: {"description": "the body is not JSON"},
    413: {"description": "the body is over `api.ingest_max_body_bytes`"},
    415: {"description": "the body is not sent as application/json"},
    422: {"description": "not an IP, a missing or unknown field, an empty list, too many IPs"},
    429: {"description": "the client's rate limit: retry after `Retry-After` seconds"},
    503: {"description": "the IPs could not be stored (landing folder or Kafka): retry later"},
}


def _body_schema(properties: dict, required: str) -> dict:
    # The routes read the raw body themselves (to count its bytes before parsing), so the
    # OpenAPI schema is declared here rather than derived from a pydantic model.
    schema = {
        "type": "object",
        "properties": properties,
        "required": [required],
        "additionalProperties": False,
    }
    return {"requestBody": {"required": True, "content": {JSON_TYPE: {"schema": schema}}}}


def install(
    app: FastAPI,
    api: ApiConfig,
    sink: IpSink,
    metrics: IngestMetrics,
    sink_timeout: float,
    dependencies=(),
) -> None:
    """Add the ingest routes to `app`."""
    app.include_router(
        ingest_router(api, sink, metrics, sink_timeout), dependencies=list(dependencies)
    )
