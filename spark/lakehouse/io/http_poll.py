"""The edges of `lakehouse poll`: one HTTP GET with timeouts and retries, and where answers go.

No Spark here: the poller is a small long-running process.

- `Fetcher`: urllib3 (the HTTP library botocore and requests are built on) with connect and
  read timeouts and its `Retry`: exponential backoff with jitter on connection errors,
  timeouts and 429/5xx answers, and `Retry-After` (seconds or an HTTP date) honoured on
  429 and 503.
- `LandingFolder`: each poll's record as one JSON line in a new file, written under a
  hidden temporary name and renamed, so `lakehouse batch --api-ticks` never reads half a
  line (hidden names are not ingested).
- `KafkaTopic`: the record produced to the `api_ticks` topic (acks=all, idempotent).
- `load_state` / `save_state`: the small file that remembers, across restarts, the last
  tick time produced per symbol.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.util import Retry, parse_url

log = logging.getLogger("lakehouse.poll")

# Answers worth another try: rate limited, or the server (or a proxy before it) failing.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class BadUrl(ValueError):
    """The URL to poll is not an http(s) URL with a host."""


def check_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host; else `BadUrl` saying what is wrong."""
    try:
        parsed = parse_url(url)
    except ValueError as error:
        raise BadUrl(f"not a URL: {url!r} ({error})") from None
    if parsed.scheme not in ("http", "https"):
        raise BadUrl(f"not an http(s) URL: {url!r} (scheme {parsed.scheme or 'missing'})")
    if not parsed.host:
        raise BadUrl(f"no host in URL {url!r}")
    return url


class PollRetry(Retry):
    """urllib3's `Retry` with two changes, both in the methods urllib3 documents for overriding.

    Backoff starts with the first retry (urllib3 retries the first failure at once and
    only then backs off: the second request of a poll that hit a timeout or a 502 would
    follow the first immediately). A `Retry-After` beyond `MAX_RETRY_AFTER` is cut to it,
    so one answer cannot park the poller for a day.
    """

    MAX_RETRY_AFTER = 300.0

    def get_backoff_time(self) -> float:
        errors = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            errors += 1
        if errors == 0:
            return 0.0
        delay = self.backoff_factor * (2 ** (errors - 1)) + random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, delay)))

    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.MAX_RETRY_AFTER)


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retries of one poll. The n-th retry waits `backoff_seconds * 2**(n-1)`
    plus up to `backoff_seconds` of jitter (at most `backoff_max_seconds`), or what
    `Retry-After` asks."""

    connect_timeout: float
    read_timeout: float
    max_retries: int
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0


@dataclass(frozen=True)
class Answer:
    """What one poll got: the final status and body, or the error when there was no answer."""

    status: int | None
    body: bytes | None
    attempts: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Fetcher:
    """GET one URL with timeouts and retries; one connection pool for all polls."""

    def __init__(self, url: str, settings: HttpSettings):
        self.url = check_url(url)
        self.settings = settings
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
            headers={"Accept": "application/json", "User-Agent": "lakehouse-poll"},
        )

    def retry(self) -> PollRetry:
        s = self.settings
        return PollRetry(
            total=s.max_retries,
            redirect=5,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=s.backoff_seconds,
            backoff_jitter=s.backoff_seconds,
            backoff_max=s.backoff_max_seconds,
            respect_retry_after_header=True,
            # The last answer of a poll that kept failing is returned, not raised: its body
            # (an error page) is what the poll records.
            raise_on_status=False,
        )

    def fetch(self) -> Answer:
        started = time.monotonic()
        retry = self.retry()
        try:
            response = self.pool.request("GET", self.url, retries=retry, preload_content=True)
        except MaxRetryError as error:
            return Answer(
                None,
                None,
                self.settings.max_retries + 1,
                time.monotonic() - started,
                _describe(error.reason),
            )
        except HTTPError as error:
            return Answer(None, None, 1, time.monotonic() - started, _describe(error))
        history = response.retries.history if response.retries is not None else ()
        return Answer(response.status, response.data, len(history) + 1, time.monotonic() - started)

    def close(self) -> None:
        self.pool.clear()


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no answer"
    text = str(error)
    # urllib3 prefixes its messages with the connection object's repr: keep the reason.
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return f"{type(error).__name__}: {text}"


def one_line(body: bytes) -> bytes:
    """`body` as one line: CR and LF become spaces. JSON only has them between tokens (never
    raw inside a string), so a JSON body keeps its meaning; an HTML error page keeps its text."""
    return body.replace(b"\r\n", b" ").replace(b"\r", b" ").replace(b"\n", b" ")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a hidden temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LandingFolder:
    """Each record as one line of a new file `<folder>/<UTC date>/poll-<UTC time>.jsonl`.

    A file per poll, never appended to: a reader sees a whole file or none of it.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def describe(self) -> str:
        return f"landing folder {self.folder}"

    def put(self, record: bytes, key: str | None, now: datetime) -> str:
        now = now.astimezone(UTC)
        name = f"poll-{now:%Y%m%dT%H%M%S.%f}Z.jsonl"
        path = self.folder / f"{now:%Y-%m-%d}" / name
        n = 1
        while path.exists():  # two polls in one microsecond (a clock that went back)
            n += 1
            path = path.with_name(f"{name[:-6]}-{n}.jsonl")
        _write_atomically(path, one_line(record) + b"\n")
        return str(path)

    def close(self) -> None:
        pass


class KafkaTopic:
    """Each record as one message of `topic`, keyed by its symbol when it has one."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap = bootstrap
        self.topic = topic

    def describe(self) -> str:
        return f"Kafka topic {self.topic} at {self.bootstrap}"

    def put(self, record: bytes, key: str | None, now: datetime) -> str:
        from lakehouse.io.kafka import send_paced

        stats = send_paced(
            self.bootstrap, self.topic, [(key.encode() if key else None, record)], rate=None
        )
        if stats.acknowledged != 1:
            raise OSError(
                f"Kafka at {self.bootstrap} did not acknowledge the record on {self.topic}"
            )
        return f"kafka:{self.topic}"

    def close(self) -> None:
        pass


def load_state(path: Path) -> dict[str, int]:
    """The last tick time (epoch ms) produced per symbol by earlier runs; empty without a file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning(
            "ignoring unreadable poll state %s (%s): ticks seen before may be produced again",
            path,
            error,
        )
        return {}
    times = data.get("last_time_ms", {}) if isinstance(data, dict) else {}
    return {str(k): int(v) for k, v in times.items() if isinstance(v, int | float)}


def save_state(path: Path, last_time_ms: dict[str, int], url: str) -> None:
    """Write the state file (atomically: a crash leaves the old one or the new one)."""
    doc = {
        "url": url,
        "last_time_ms": dict(sorted(last_time_ms.items())),
        "saved_at": datetime.now(UTC).isoformat(),
    }
    _write_atomically(Path(path), json.dumps(doc, indent=1).encode() + b"\n")
