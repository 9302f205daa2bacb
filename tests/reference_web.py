"""An independent, plain-Python reference ("oracle") for the web-event pipeline (seed 002).

Given raw JSON-lines files it computes what the Spark pipeline must produce: the silver
counts and the three gold tables. It shares no code with ``lakehouse``: ``json`` for the
events, ``datetime`` for times, dicts for counting.

Contract implemented here
-------------------------
Lines: the file's bytes split on ``\\n`` (a final empty piece is not a line), one trailing
``\\r`` removed; an empty or whitespace-only line is a counted skip. Every other line is
one hit: identical lines are separate hits.

A line is quarantined when it is not JSON or not a JSON object; when ``host`` or ``ip``
is absent, null, blank, not a string, or longer than 255 / 64 characters (``host``
trimmed and lower-cased, ``ip`` trimmed); when the referrer's host is longer than 255;
when ``event_time`` is absent, blank, not a string or not ISO-8601; when the time is
before 2000-01-01 or more than 24 h after now. ``event_time`` without an offset is UTC.

Gold: windows are ``[start, start + 5 min)`` in UTC, start a multiple of 5 minutes since
the epoch; ``unique_ips`` the distinct IPs of a (window, host). The referrer host is the
lower-cased host of ``referrer`` (``http://`` assumed when it has no scheme); absent,
``""`` or ``"-"`` is ``(direct)``. Sessions: per (ip, host), events sorted by time; an
event less than ``gap`` after the previous one joins its session. ``report_date`` is the
UTC date of the window or session start.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

# The gold tables of web events and their columns, in the order the tests compare them.
GOLD_COLUMNS = {
    "traffic_5min": ("report_date", "window_start", "window_end", "host", "hits", "unique_ips"),
    "traffic_5min_referrer": ("report_date", "window_start", "window_end", "host", "referrer_host", "hits"),
    "sessions": ("report_date", "ip", "host", "session_start", "session_end", "hits", "duration_s"),
}

MIN_EVENT_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(hours=24)
WINDOW = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DIRECT = "(direct)"


def lines_of(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    pieces = data.decode("utf-8").split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    return [p[:-1] if p.endswith("\r") else p for p in pieces]


def _referrer_host(referrer) -> str | None:
    if not isinstance(referrer, str) or referrer.strip() in ("", "-"):
        return None
    text = referrer if "://" in referrer else "http://" + referrer
    try:
        return urlsplit(text).hostname
    except ValueError:
        return None


def _text(ev: dict, name: str) -> str | None:
    value = ev.get(name)
    return value if isinstance(value, str) and value.strip() else None


def parse_event(line: str, now: datetime) -> tuple[str, dict | str]:
    """("blank", ""), ("quarantine", reason) or ("valid", {event_ts, ip, host, referrer_host})."""
    if not line.strip():
        return "blank", ""
    try:
        ev = json.loads(line)
    except ValueError:
        return "quarantine", "invalid JSON"
    if not isinstance(ev, dict):
        return "quarantine", "JSON is not an object"
    host, ip, when = _text(ev, "host"), _text(ev, "ip"), _text(ev, "event_time")
    if host is None or len(host.strip()) > 255:
        return "quarantine", "host"
    if ip is None or len(ip.strip()) > 64:
        return "quarantine", "ip"
    referrer_host = _referrer_host(ev.get("referrer"))
    if referrer_host is not None and len(referrer_host) > 255:
        return "quarantine", "referrer host"
    if when is None:
        return "quarantine", "event_time"
    try:
        ts = datetime.fromisoformat(when)
    except ValueError:
        return "quarantine", "unparseable event_time"
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if ts < MIN_EVENT_TS or ts > now + MAX_FUTURE:
        return "quarantine", "timestamp out of range"
    return "valid", {
        "event_ts": ts,
        "ip": ip.strip(),
        "host": host.strip().lower(),
        "referrer_host": referrer_host,
    }


def reference_web_events(paths, gap_seconds: int = 60, now: datetime | None = None) -> dict:
    """Counts and gold rows (lists of dicts, naive UTC datetimes) for the given files."""
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(("read", "skipped_blank", "quarantined", "duplicates", "silver"), 0)
    events = []
    for path in paths:
        for line in lines_of(Path(path)):
            counts["read"] += 1
            kind, value = parse_event(line, now)
            if kind == "blank":
                counts["skipped_blank"] += 1
            elif kind == "quarantine":
                counts["quarantined"] += 1
            else:
                counts["silver"] += 1
                events.append(value)
    return {
        "counts": counts,
        "traffic_5min": traffic_5min(events),
        "traffic_5min_referrer": traffic_5min_referrer(events),
        "sessions": sessions(events, gap_seconds),
    }


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def _window(ts: datetime) -> datetime:
    return EPOCH + ((ts - EPOCH) // WINDOW) * WINDOW


def traffic_5min(events: list[dict]) -> list[dict]:
    hits: dict = defaultdict(int)
    ips: dict = defaultdict(set)
    for ev in events:
        key = (_window(ev["event_ts"]), ev["host"])
        hits[key] += 1
        ips[key].add(ev["ip"])
    return [
        {
            "report_date": start.date(),
            "window_start": _naive(start),
            "window_end": _naive(start + WINDOW),
            "host": host,
            "hits": n,
            "unique_ips": len(ips[(start, host)]),
        }
        for (start, host), n in hits.items()
    ]


def traffic_5min_referrer(events: list[dict]) -> list[dict]:
    hits: dict = defaultdict(int)
    for ev in events:
        hits[(_window(ev["event_ts"]), ev["host"], ev["referrer_host"] or DIRECT)] += 1
    return [
        {
            "report_date": start.date(),
            "window_start": _naive(start),
            "window_end": _naive(start + WINDOW),
            "host": host,
            "referrer_host": referrer,
            "hits": n,
        }
        for (start, host, referrer), n in hits.items()
    ]


def sessions(events: list[dict], gap_seconds: int) -> list[dict]:
    gap = timedelta(seconds=gap_seconds)
    by_visitor: dict = defaultdict(list)
    for ev in events:
        by_visitor[(ev["ip"], ev["host"])].append(ev["event_ts"])
    out = []
    for (ip, host), times in by_visitor.items():
        times.sort()
        current = [times[0]]
        for ts in times[1:]:
            if ts - current[-1] < gap:
                current.append(ts)
            else:
                out.append(_session(ip, host, current))
                current = [ts]
        out.append(_session(ip, host, current))
    return out


def _session(ip: str, host: str, times: list[datetime]) -> dict:
    start, end = times[0], times[-1]
    return {
        "report_date": start.date(),
        "ip": ip,
        "host": host,
        "session_start": _naive(start),
        "session_end": _naive(end),
        "hits": len(times),
        "duration_s": (end - start).total_seconds(),
    }


if __name__ == "__main__":
    import sys

    result = reference_web_events(sys.argv[1:])
    print(result["counts"])
    for table in ("traffic_5min", "traffic_5min_referrer", "sessions"):
        print(table, len(result[table]), "rows")
