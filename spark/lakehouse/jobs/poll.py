"""Poll a JSON HTTP endpoint (seed 003's Binance 24h ticker by default) into the api_ticks feed.

    lakehouse poll [--url URL] [--interval SECONDS] [--max-polls N] [--to kafka|landing]
    python -m lakehouse.jobs.poll --url 'https://api.binance.com/api/v3/ticker/24hr?symbol=BTCUSDT'

Every `--interval` seconds (`poll.interval_seconds`), one GET with connect/read timeouts
and retries (exponential backoff with jitter; `Retry-After` honoured on 429/503). The
response is sent as it came, minus the ticks already produced, to the Kafka topic
`kafka.topics.api_ticks` (`--to kafka`, the default of the services, cluster and compose
profiles) or written as a JSON line into `poll.landing` (`--to landing`, the embedded
default), which `lakehouse batch --api-ticks <folder>` ingests. Silver explodes responses
into ticks (`feeds/api_ticks/silver.py`).

A tick is its symbol and time (`poll.symbol_field`, `poll.time_field`: dotted paths).
It is never produced twice: the keys of recent polls are kept in memory, and the last time
produced per symbol is kept in a small state file (`_poll_state*.json` in the landing
folder) that a restart reads. A crash between sending and saving that file can produce a
tick again; silver's dedupe on (symbol, time) drops it. Error answers (an HTML page, a
`{"code", "msg"}` payload) are sent too, once per poll: silver quarantines them with the
reason, so an outage is visible in the tables, not only in this log.

One log line per poll. Exit code 0 when at least one poll got ticks (new or repeated),
1 when every poll failed, 2 for a bad URL or an unreachable Kafka. Needs no Spark.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.config import PROFILES, Config, load_config
from lakehouse.io.http_poll import (
    Answer,
    BadUrl,
    Fetcher,
    HttpSettings,
    KafkaTopic,
    LandingFolder,
    check_url,
    load_state,
    save_state,
)
from lakehouse.jobs.runtime import setup_logging

log = logging.getLogger("lakehouse.poll")

# Tick keys of this many recent polls are kept in memory.
RECENT_POLLS = 100
# A numeric time at or above this is epoch milliseconds, below it epoch seconds (as silver
# reads it: `transforms.api_ticks.EPOCH_MS_FROM`).
EPOCH_MS_FROM = 1e11


@dataclass(frozen=True)
class Fields:
    """Dotted paths of a tick's symbol and time in a response object (`poll.*_field`)."""

    symbol: str
    time: str


def _at(obj: Any, dotted: str) -> Any:
    for part in (p for p in dotted.split(".") if p):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def time_ms(value: Any) -> int | None:
    """A tick time as epoch milliseconds: a number or numeric text (ms, or seconds when small)
    or ISO-8601 text (naive = UTC); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return round(parsed.timestamp() * 1000)
    if number is None or number != number or abs(number) == float("inf"):
        return None
    return round(number if abs(number) >= EPOCH_MS_FROM else number * 1000)


def tick_key(entry: Any, fields: Fields) -> tuple[str, int] | None:
    """(symbol, time in ms) of a response entry, or None when it is no tick (an error payload)."""
    if not isinstance(entry, dict):
        return None
    symbol = _at(entry, fields.symbol)
    when = time_ms(_at(entry, fields.time))
    if not isinstance(symbol, str) or not symbol.strip() or when is None:
        return None
    return symbol.strip(), when


@dataclass
class Selection:
    """What to send of one response: `record` (None: nothing new), its ticks' keys, counts."""

    record: bytes | None
    keys: list[tuple[str, int]]
    ticks: int  # entries that are ticks
    repeated: int  # of those, already produced
    what: str  # "ticks" | a short description of a response that holds none

    @property
    def key(self) -> str | None:
        """The Kafka key: the symbol, when the record's new ticks have one."""
        symbols = {s for s, _t in self.keys}
        return symbols.pop() if len(symbols) == 1 else None


class TickFilter:
    """Which ticks of a response are new. A tick is new unless its key is among those of the
    last `RECENT_POLLS` polls, or an earlier run produced a time at or after it for its
    symbol (the state file: `last_time_ms`)."""

    def __init__(
        self,
        fields: Fields,
        last_time_ms: dict[str, int] | None = None,
        recent_polls: int = RECENT_POLLS,
    ):
        self.fields = fields
        self.before_start = dict(last_time_ms or {})
        self.last_time_ms = dict(last_time_ms or {})
        self._recent: deque[list[tuple[str, int]]] = deque()
        self._recent_keys: dict[tuple[str, int], int] = {}
        self._recent_polls = recent_polls

    def _seen(self, key: tuple[str, int]) -> bool:
        symbol, when = key
        return key in self._recent_keys or when <= self.before_start.get(symbol, -1 << 62)

    def select(self, body: bytes) -> Selection:
        """The record to send for `body`: unchanged when all its ticks are new (or it holds
        none: an error payload goes as it is), the new ticks alone when some were seen,
        None when all were."""
        try:
            doc = json.loads(body)
        except ValueError:
            return Selection(body, [], 0, 0, _not_json(body))
        is_list = isinstance(doc, list)
        entries = doc if is_list else [doc]
        kept, keys, ticks, repeated = [], [], 0, 0
        in_this = set()
        for entry in entries:
            key = tick_key(entry, self.fields)
            if key is None:
                kept.append(entry)
                continue
            ticks += 1
            if self._seen(key) or key in in_this:
                repeated += 1
                continue
            in_this.add(key)
            kept.append(entry)
            keys.append(key)
        what = "ticks" if ticks else _no_ticks(doc)
        if not repeated:
            return Selection(body, keys, ticks, 0, what)
        if not kept:
            return Selection(None, [], ticks, repeated, what)
        # Some ticks were seen: the rest, re-serialised in the response's shape.
        rest = kept if is_list else kept[0]
        return Selection(
            json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode(),
            keys,
            ticks,
            repeated,
            what,
        )

    def produced(self, keys: list[tuple[str, int]]) -> None:
        """Remember the keys of one poll's record, once it was sent."""
        self._recent.append(keys)
        for key in keys:
            self._recent_keys[key] = self._recent_keys.get(key, 0) + 1
            symbol, when = key
            self.last_time_ms[symbol] = max(when, self.last_time_ms.get(symbol, when))
        while len(self._recent) > self._recent_polls:
            for key in self._recent.popleft():
                left = self._recent_keys[key] - 1
                if left:
                    self._recent_keys[key] = left
                else:
                    del self._recent_keys[key]


def _not_json(body: bytes) -> str:
    head = body.lstrip()[:200].lower()
    return "an HTML page" if head.startswith(b"<") else "not JSON"


def _no_ticks(doc: Any) -> str:
    if isinstance(doc, dict) and "code" in doc and ("msg" in doc or "message" in doc):
        return f"API error {doc.get('code')}: {doc.get('msg', doc.get('message'))}"
    if isinstance(doc, list) and not doc:
        return "an empty list"
    return "no ticks"


@dataclass
class PollStats:
    polls: int = 0
    ok: int = 0  # polls whose answer held ticks
    failed: int = 0
    records: int = 0  # records sent
    new_ticks: int = 0
    repeated_ticks: int = 0
    durations: list[float] = field(default_factory=list)


def poll_once(
    n: int,
    fetcher: Fetcher,
    ticks: TickFilter,
    sink,
    state_path: Path | None,
    stats: PollStats,
    now: Callable[[], datetime],
) -> Answer:
    """One poll: fetch, pick what is new, send it, remember it. Logs one line."""
    answer = fetcher.fetch()
    stats.polls += 1
    stats.durations.append(answer.seconds)
    timing = (
        f"{answer.seconds:.2f}s, {answer.attempts} attempt{'s' if answer.attempts != 1 else ''}"
    )
    if answer.body is None:
        stats.failed += 1
        log.warning("poll %d: failed after %s: %s", n, timing, answer.error)
        return answer
    if not answer.body.strip():
        # Nothing to keep: it would land as a blank line.
        stats.failed += 1
        log.warning("poll %d: HTTP %s in %s: empty answer, nothing sent", n, answer.status, timing)
        return answer
    selection = ticks.select(answer.body)
    got_ticks = answer.ok and selection.ticks > 0
    where = "(nothing sent)"
    if selection.record is not None:
        try:
            where = "-> " + sink.put(selection.record, selection.key, now())
        except OSError as error:
            stats.failed += 1
            log.error(
                "poll %d: HTTP %s, could not write to the %s: %s",
                n,
                answer.status,
                sink.describe(),
                error,
            )
            return answer
        stats.records += 1
        ticks.produced(selection.keys)
        if state_path is not None and selection.keys:
            save_state(state_path, ticks.last_time_ms, fetcher.url)
    stats.new_ticks += len(selection.keys)
    stats.repeated_ticks += selection.repeated
    if got_ticks:
        stats.ok += 1
        log.info(
            "poll %d: HTTP %d in %s: %d tick(s), %d new, %d already sent %s",
            n,
            answer.status,
            timing,
            selection.ticks,
            len(selection.keys),
            selection.repeated,
            where,
        )
    else:
        stats.failed += 1
        log.warning(
            "poll %d: HTTP %s in %s: %s, no ticks %s",
            n,
            answer.status,
            timing,
            selection.what,
            where,
        )
    return answer


def run_poll(
    fetcher: Fetcher,
    ticks: TickFilter,
    sink,
    interval: float,
    max_polls: int | None,
    state_path: Path | None,
    stop: threading.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PollStats:
    """Poll every `interval` seconds (start to start; a poll that overruns is followed at
    once) until `max_polls` polls or `stop` is set."""
    stop = stop or threading.Event()
    stats = PollStats()
    started = time.monotonic()
    n = 0
    while not stop.is_set() and (max_polls is None or n < max_polls):
        n += 1
        poll_once(n, fetcher, ticks, sink, state_path, stats, now)
        if max_polls is not None and n >= max_polls:
            break
        # Fixed rate: the n-th poll starts at n * interval; slots a slow poll overran are skipped.
        elapsed = time.monotonic() - started
        wait = interval - (elapsed % interval) if interval > 0 else 0.0
        stop.wait(wait)
    return stats


@dataclass(frozen=True)
class PollSetup:
    """Everything a poll run needs, from the config and the command line."""

    url: str
    interval: float
    http: HttpSettings
    fields: Fields
    sink: str  # kafka | landing
    landing: Path
    state_path: Path
    bootstrap: str
    topic: str


def setup(
    config: Config,
    url: str | None = None,
    interval: float | None = None,
    to: str | None = None,
    landing: str | None = None,
    state: str | None = None,
    backoff_seconds: float = 1.0,
) -> PollSetup:
    """The poll settings of `config` with the command line's overrides; `BadUrl` for a bad URL."""
    poll = config.poll
    sink = to or poll.sink  # poll.sink: where the hourly DAG's bronze task reads too
    folder = Path(landing) if landing else poll.landing
    topic = config.kafka.topics["api_ticks"]
    default_state = folder / (
        "_poll_state.json" if sink == "landing" else f"_poll_state.kafka.{topic}.json"
    )
    return PollSetup(
        url=check_url(url or poll.url),
        interval=poll.interval_seconds if interval is None else interval,
        http=HttpSettings(
            poll.connect_timeout_seconds,
            poll.read_timeout_seconds,
            poll.max_retries,
            backoff_seconds,
        ),
        fields=Fields(poll.symbol_field, poll.time_field),
        sink=sink,
        landing=folder,
        state_path=Path(state) if state else default_state,
        bootstrap=config.kafka.bootstrap_servers,
        topic=topic,
    )


def open_sink(s: PollSetup):
    """The landing folder, or the Kafka topic after checking that the broker answers."""
    if s.sink == "landing":
        return LandingFolder(s.landing)
    from lakehouse.io import kafka

    if not kafka.answers(s.bootstrap, timeout=10):
        raise ConnectionError(
            f"Kafka at {s.bootstrap} does not answer: start it (`make services-up`) or poll into files with --to landing"
        )
    return KafkaTopic(s.bootstrap, s.topic)


def poll(s: PollSetup, max_polls: int | None, stop: threading.Event | None = None) -> PollStats:
    """Run the poller described by `s`; the caller decides what the stats mean."""
    sink = open_sink(s)
    last = load_state(s.state_path)
    fetcher = Fetcher(s.url, s.http)
    log.info(
        "polling %s every %gs into the %s (state %s; %d symbol(s) known)",
        s.url,
        s.interval,
        sink.describe(),
        s.state_path,
        len(last),
    )
    try:
        return run_poll(
            fetcher, TickFilter(s.fields, last), sink, s.interval, max_polls, s.state_path, stop
        )
    finally:
        fetcher.close()
        sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse poll", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="JSON endpoint to poll (default: poll.url)")
    parser.add_argument(
        "--interval",
        type=float,
        help="seconds between poll starts (default: poll.interval_seconds)",
    )
    parser.add_argument(
        "--max-polls", type=int, help="stop after this many polls (default: run until stopped)"
    )
    parser.add_argument(
        "--to",
        choices=("kafka", "landing"),
        help="where responses go (default: landing for the local profile, kafka otherwise)",
    )
    parser.add_argument("--landing", help="landing folder (default: poll.landing)")
    parser.add_argument(
        "--state", help="state file: last tick time per symbol (default: in the landing folder)"
    )
    parser.add_argument(
        "--profile", choices=PROFILES, help="config profile (default: $LAKEHOUSE_PROFILE or local)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging (each retry of urllib3)"
    )
    args = parser.parse_args(argv)
    if args.interval is not None and args.interval < 0:
        parser.error("--interval must be 0 or more seconds")
    if args.max_polls is not None and args.max_polls < 1:
        parser.error("--max-polls must be at least 1")
    setup_logging(args.verbose)
    try:
        s = setup(
            load_config(profile=args.profile),
            args.url,
            args.interval,
            args.to,
            args.landing,
            args.state,
        )
    except BadUrl as error:
        print(f"lakehouse poll: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stats = poll(s, args.max_polls, stop)
    except ConnectionError as error:
        print(f"lakehouse poll: {error}", file=sys.stderr)
        return 2
    print(
        f"poll: {stats.polls} poll(s), {stats.ok} with ticks, {stats.failed} failed; {stats.records} record(s) sent, "
        f"{stats.new_ticks} new tick(s), {stats.repeated_ticks} already sent",
        flush=True,
    )
    return 1 if stats.polls and not stats.ok else 0


if __name__ == "__main__":
    sys.exit(main())
