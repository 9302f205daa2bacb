"""An independent, plain-Python reference ("oracle") for the pipeline's results.

Given raw input files it computes what the Spark pipeline must produce: the
silver counts (read / skipped blank / quarantined / duplicates / silver) and the
gold tables, with the contract semantics written out as simply as possible. It
shares no code with ``lakehouse``: it uses ``apachelogs`` for Apache lines,
``json`` for events and ``maxminddb`` for GeoIP, so a bug in the pipeline cannot
hide in a helper both sides use.

Contract implemented here
-------------------------
Lines: the file's bytes split on ``\\n`` (a final empty piece after the last
newline is not a line), one trailing ``\\r`` removed. A line that is not valid UTF-8
-> quarantine. An empty or whitespace-only line is a counted skip. A record is its
place (file, line number): identical lines are separate records.

Access logs: parsed with the LogFormat (for Combined, a line that is valid
Common is also accepted, with no referrer/agent); failure -> quarantine. Status
outside 100..599, bytes negative or beyond a 64-bit integer -> quarantine. The
request line is ``METHOD TARGET [PROTOCOL]``: METHOD letters, PROTOCOL the last
word when it looks like ``NAME/1.1``, TARGET everything between (spaces too, not
empty); otherwise method/path are null and the endpoint is ``"-"``; endpoint =
TARGET before the first ``?``. ``event_ts`` is ``%t`` in UTC; before 2000-01-01 or
after now + 24 h -> quarantine. Every line is its own event (no duplicates).

Product views: invalid JSON or JSON that is not an object -> quarantine.
event_id = ``_id`` (``_id["$oid"]`` for an object) else ``event_id`` else the
record's place. ``product_id`` or ``device_id`` an object, array or boolean ->
quarantine; missing/null/empty ``product_id`` -> quarantine.
event_ts = ``timestamp`` (ISO-8601, naive means UTC) else ``time_stamp`` (epoch
seconds); neither -> quarantine; out of range as above -> quarantine. ``store_id``
over 255 characters or ``referrer_url`` over 2048 bytes of UTF-8 -> quarantine. Dedupe on
event_id, first wins. country = GeoIP ISO code of ``remote_ip``; referrer_host =
lower-case host of ``referrer_url``. The seed's own keys: ``store_id`` and the whole
``referrer_url`` as sent (numbers as their text), none or blank -> ``(unknown)`` and
``(direct)``.

Run directly to print totals::

    python tests/reference_gold.py access sample_logs/access.log [--format response_time]
    python tests/reference_gold.py product-views sample_logs/product_views.jsonl
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import apachelogs
import maxminddb
import user_agents

COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
COMMON = '%h %l %u %t "%r" %>s %b'
RESPONSE_TIME = COMBINED + " %D"
NAMED_FORMATS = {"combined": COMBINED, "common": COMMON, "response_time": RESPONSE_TIME}

MIN_EVENT_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(hours=24)
UNKNOWN_COUNTRY = "(unknown)"
DIRECT_REFERRER = "(direct)"
UNKNOWN_AGENT = "(unknown)"
UNKNOWN_STORE = "(unknown)"
MAX_STORE_ID = 255  # characters
MAX_URL_BYTES = 2048  # referrer_url, in UTF-8


def default_geoip_db() -> str:
    """Path of the GeoLite2-City.mmdb shipped in the maxminddb-geolite2 package."""
    import _maxminddb_geolite2  # the data package behind ``geolite2``

    return str(Path(_maxminddb_geolite2.__file__).with_name("GeoLite2-City.mmdb"))


# ---------------------------------------------------------------------------
# reading


def _as_paths(paths) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_places(paths: str | Path | Iterable[str | Path]) -> Iterator[tuple[tuple[str, int], str | None]]:
    """((file, line number), text) of each line in order: split on \\n, one trailing \\r
    dropped; text None when the line is not valid UTF-8."""
    for path in _as_paths(paths):
        pieces = path.read_bytes().split(b"\n")
        if pieces[-1] == b"":
            pieces.pop()  # after the last newline: not a line
        for number, raw in enumerate(pieces, start=1):
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                yield (str(path), number), raw.decode("utf-8")
            except UnicodeDecodeError:
                yield (str(path), number), None


def read_lines(paths: str | Path | Iterable[str | Path]) -> Iterator[str | None]:
    """The text of each line in order (None when it is not valid UTF-8)."""
    for _place, text in read_places(paths):
        yield text


def is_blank(text: str) -> bool:
    return text.strip() == ""


def in_range(ts: datetime, now: datetime) -> bool:
    return MIN_EVENT_TS <= ts <= now + MAX_FUTURE


def percentile(values: list[float], p: float) -> float | None:
    """Percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _new_counts() -> dict[str, int]:
    return {"read": 0, "skipped_blank": 0, "quarantined": 0, "duplicates": 0, "silver": 0}


# ---------------------------------------------------------------------------
# access logs


def split_request_line(request_line: str | None) -> tuple[str | None, str | None, str | None]:
    """(method, target, protocol) of ``METHOD TARGET [PROTOCOL]``, else (None, None, None)."""
    if request_line is None or " " not in request_line:
        return None, None, None
    method, rest = request_line.split(" ", 1)
    if not (method.isascii() and method.isalpha()):
        return None, None, None
    protocol = None
    head, _, last = rest.rpartition(" ")
    name, slash, version = last.partition("/")
    looks_like_protocol = slash and name.isascii() and name.isalpha() and version and all(c.isdigit() or c == "." for c in version)
    if (head != "" or rest.startswith(" ")) and looks_like_protocol:
        protocol, rest = last, head
    if rest == "":
        return None, None, None
    return method.upper(), rest, protocol


def _response_time_ms(entry) -> float | None:
    us = getattr(entry, "request_duration_microseconds", None)
    if us is not None:
        return us / 1000.0
    ms = getattr(entry, "request_duration_milliseconds", None)
    if ms is not None:
        return float(ms)
    s = getattr(entry, "request_duration_seconds", None)
    if s is not None:
        return s * 1000.0
    return None


def _status(entry) -> int | None:
    for attr in ("final_status", "status", "original_status"):  # %>s, %s, %<s
        value = getattr(entry, attr, None)
        if value is not None:
            return value
    return None


def parse_access_line(text: str, parsers: list) -> object | None:
    for parser in parsers:
        try:
            return parser.parse(text)
        except (apachelogs.InvalidEntryError, ValueError, OverflowError):
            continue  # ValueError: the %t text matched but is not a date
    return None


def reference_access_logs(
    paths: str | Path | Iterable[str | Path],
    log_format: str = "combined",
    *,
    top_n: int = 100,
    now: datetime | None = None,
    also_accept_common: bool | None = None,
    keep_silver: bool = False,
    geoip_db_path: str | Path | None = None,
) -> dict:
    """Expected counts and gold tables (endpoint_daily, top_ips_daily, traffic_daily,
    agent_daily, request_country_daily, request_referrer_daily) of access logs.

    ``log_format`` is ``"combined"``, ``"response_time"``, ``"common"`` or a LogFormat
    string. ``also_accept_common`` defaults to True for Combined only.
    """
    fmt = NAMED_FORMATS.get(log_format, log_format)
    if also_accept_common is None:
        also_accept_common = fmt == COMBINED
    parsers = [apachelogs.LogParser(fmt)]
    if also_accept_common and fmt != COMMON:
        parsers.append(apachelogs.LogParser(COMMON))
    has_time = any(d in fmt for d in ("%D", "%T", "%{us}T", "%{ms}T", "%{s}T"))
    now = now or datetime.now(UTC)

    counts = _new_counts()
    reasons: dict[str, int] = defaultdict(int)
    silver: list[dict] = []
    for _place, text in read_places(paths):
        counts["read"] += 1
        if text is None:
            reasons["not_utf8"] += 1
            continue
        if is_blank(text):
            counts["skipped_blank"] += 1
            continue
        entry = parse_access_line(text, parsers)
        if entry is None:
            reasons["unparseable"] += 1
            continue
        ts = getattr(entry, "request_time", None)
        if ts is None or ts.tzinfo is None:
            reasons["no_timestamp"] += 1
            continue
        ts = ts.astimezone(UTC)
        if not in_range(ts, now):
            reasons["out_of_range"] += 1
            continue
        status = _status(entry)
        if status is None or not 100 <= status <= 599:
            reasons["bad_status"] += 1
            continue
        if entry.bytes_sent is not None and not 0 <= entry.bytes_sent < 2**63:
            reasons["bad_bytes"] += 1
            continue
        method, uri, protocol = split_request_line(entry.request_line)
        silver.append(
            {
                "ip": entry.remote_host,
                "user_agent": _header(entry, "User-Agent"),
                "referrer": _header(entry, "Referer"),
                "event_ts": ts.replace(tzinfo=None),
                "event_date": ts.date(),
                "method": method,
                "path": uri,
                "endpoint": uri.split("?", 1)[0] if uri is not None else "-",
                "protocol": protocol,
                "status": status,
                "bytes": entry.bytes_sent,
                "response_time_ms": _response_time_ms(entry) if has_time else None,
            }
        )
    counts["quarantined"] = sum(reasons.values())
    counts["silver"] = len(silver)

    groups: dict[tuple[date, str], list[dict]] = defaultdict(list)
    per_ip: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in silver:
        groups[(row["event_date"], row["endpoint"])].append(row)
        per_ip[row["event_date"]][row["ip"]] += 1

    endpoint_daily = []
    for (day, endpoint), rows in sorted(groups.items()):
        statuses = [r["status"] for r in rows if r["status"] is not None]
        n = len(rows)
        s4 = sum(1 for s in statuses if 400 <= s <= 499)
        s5 = sum(1 for s in statuses if 500 <= s <= 599)
        times = [r["response_time_ms"] for r in rows if r["response_time_ms"] is not None]
        endpoint_daily.append(
            {
                "report_date": day,
                "endpoint": endpoint,
                "requests": n,
                "unique_ips": len({r["ip"] for r in rows}),
                "status_2xx": sum(1 for s in statuses if 200 <= s <= 299),
                "status_3xx": sum(1 for s in statuses if 300 <= s <= 399),
                "status_4xx": s4,
                "status_5xx": s5,
                "error_rate": (s4 + s5) / n,
                "bytes": sum(r["bytes"] or 0 for r in rows),
                "p50_ms": percentile(times, 0.50),
                "p95_ms": percentile(times, 0.95),
                "p99_ms": percentile(times, 0.99),
            }
        )

    top_ips_daily = []
    for day in sorted(per_ip):
        ranked = sorted(per_ip[day].items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
        top_ips_daily.extend({"report_date": day, "ip": ip, "requests": c} for ip, c in ranked)

    result = {
        "counts": counts,
        "quarantine_reasons": dict(reasons),
        "endpoint_daily": endpoint_daily,
        "top_ips_daily": top_ips_daily,
        **request_breakdowns(silver, geoip_db_path),
    }
    if keep_silver:
        result["silver"] = silver
    return result


def _header(entry, name: str) -> str | None:
    """A request header of the line, as logged (`-` is no header: None)."""
    value = entry.headers_in.get(name) if getattr(entry, "headers_in", None) else None
    return None if value in (None, "-") else value


def classify_agent(agent: str | None) -> tuple[str, str, str, bool]:
    """(browser, os, device, is_bot) by the `user-agents` library; no agent: all unknown."""
    if agent is None:
        return UNKNOWN_AGENT, UNKNOWN_AGENT, UNKNOWN_AGENT, False
    ua = user_agents.parse(agent)
    if ua.is_bot:
        device = "bot"
    elif ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return ua.browser.family, ua.os.family, device, bool(ua.is_bot)


def request_breakdowns(silver: list[dict], geoip_db_path: str | Path | None = None) -> dict[str, list[dict]]:
    """traffic_daily, agent_daily, request_country_daily and request_referrer_daily of
    parsed access-log rows. A visitor is a distinct (IP, user agent) of the day; the country
    is the GeoIP ISO code of the client (its registered country when no other is known)."""
    by_day: dict[date, list[dict]] = defaultdict(list)
    for row in silver:
        by_day[row["event_date"]].append(row)
    traffic = []
    agents: dict[tuple, list[dict]] = defaultdict(list)
    countries: dict[tuple, list[dict]] = defaultdict(list)
    referrers: dict[tuple, list[dict]] = defaultdict(list)
    with maxminddb.open_database(str(geoip_db_path or default_geoip_db())) as reader:
        for day, rows in sorted(by_day.items()):
            classes = [classify_agent(r["user_agent"]) for r in rows]
            traffic.append(
                {
                    "report_date": day,
                    "requests": len(rows),
                    "unique_ips": len({r["ip"] for r in rows}),
                    "unique_visitors": len({(r["ip"], r["user_agent"]) for r in rows}),
                    "bot_requests": sum(1 for c in classes if c[3]),
                    **{f"status_{k}xx": sum(1 for r in rows if r["status"] // 100 == k) for k in (2, 3, 4, 5)},
                    "bytes": sum(r["bytes"] or 0 for r in rows),
                }
            )
            for row, agent in zip(rows, classes, strict=True):
                agents[(day, *agent)].append(row)
                countries[(day, geo_country_of(reader, row["ip"]) or UNKNOWN_COUNTRY)].append(row)
                referrers[(day, referrer_host_of(row["referrer"]) or DIRECT_REFERRER)].append(row)

    def per(groups: dict[tuple, list[dict]], names: tuple[str, ...]) -> list[dict]:
        return [
            {**dict(zip(("report_date", *names), key, strict=True)), "requests": len(rows), "unique_ips": len({r["ip"] for r in rows})}
            for key, rows in sorted(groups.items())
        ]

    return {
        "traffic_daily": traffic,
        "agent_daily": per(agents, ("browser", "os", "device", "is_bot")),
        "request_country_daily": per(countries, ("country",)),
        "request_referrer_daily": per(referrers, ("referrer_host",)),
    }


# ---------------------------------------------------------------------------
# product views


def event_id_of(obj: dict, place: tuple[str, int]) -> str:
    oid = obj.get("_id")
    if isinstance(oid, dict):
        oid = oid.get("$oid")
    if oid is not None and oid != "":
        return str(oid)
    eid = obj.get("event_id")
    if eid is not None and eid != "":
        return str(eid)
    return f"{place[0]}:{place[1]}"


def event_ts_of(obj: dict) -> datetime | None:
    """UTC-aware event time from ``timestamp`` (ISO-8601) else ``time_stamp`` (epoch s)."""
    ts = obj.get("timestamp")
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    epoch = obj.get("time_stamp")
    if isinstance(epoch, str) and epoch.strip().lstrip("-").isdigit():
        epoch = int(epoch.strip())
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        try:
            return datetime.fromtimestamp(epoch, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def referrer_host_of(url) -> str | None:
    if not isinstance(url, str) or url.strip() == "":
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def country_of(reader, ip) -> str | None:
    if not isinstance(ip, str) or not ip:
        return None
    try:
        rec = reader.get(ip)
    except ValueError:
        return None
    if not rec:
        return None
    return (rec.get("country") or {}).get("iso_code")


def geo_country_of(reader, ip) -> str | None:
    """ISO code of the country of `ip`, else of its registered country (GeoIP City record)."""
    try:
        rec = reader.get(ip) if isinstance(ip, str) and ip else None
    except ValueError:
        return None
    rec = rec or {}
    return (rec.get("country") or rec.get("registered_country") or {}).get("iso_code")


def _text_or_none(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _key_or_none(value: str | None) -> str | None:
    """A gold key as sent; None when missing or blank (only spaces, as Spark's trim sees it)."""
    return value if value is not None and value.strip(" ") != "" else None


def reference_product_views(
    paths: str | Path | Iterable[str | Path],
    geoip_db_path: str | Path | None = None,
    *,
    now: datetime | None = None,
    keep_silver: bool = False,
) -> dict:
    """Expected counts and gold tables (product, country, referrer, store and referrer URL views daily)."""
    now = now or datetime.now(UTC)
    counts = _new_counts()
    reasons: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    silver: list[dict] = []
    with maxminddb.open_database(str(geoip_db_path or default_geoip_db())) as reader:
        for place, text in read_places(paths):
            counts["read"] += 1
            if text is None:
                reasons["not_utf8"] += 1
                continue
            if is_blank(text):
                counts["skipped_blank"] += 1
                continue
            try:
                obj = json.loads(text)
            except ValueError:
                reasons["invalid_json"] += 1
                continue
            if not isinstance(obj, dict):
                reasons["not_an_object"] += 1
                continue
            if any(isinstance(obj.get(k), dict | list | bool) for k in ("product_id", "device_id")):
                reasons["id_not_scalar"] += 1
                continue
            product_id = _text_or_none(obj.get("product_id"))
            if product_id is None or product_id == "":
                reasons["missing_product_id"] += 1
                continue
            ts = event_ts_of(obj)
            if ts is None:
                reasons["bad_timestamp"] += 1
                continue
            if not in_range(ts, now):
                reasons["out_of_range"] += 1
                continue
            store_id = _text_or_none(obj.get("store_id"))
            referrer_url = _text_or_none(obj.get("referrer_url"))
            if store_id is not None and len(store_id) > MAX_STORE_ID:
                reasons["store_id_too_long"] += 1
                continue
            if referrer_url is not None and len(referrer_url.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES:
                reasons["referrer_url_too_long"] += 1
                continue
            event_id = event_id_of(obj, place)
            if event_id in seen:
                counts["duplicates"] += 1
                continue
            seen.add(event_id)
            silver.append(
                {
                    "event_id": event_id,
                    "product_id": product_id,
                    "device_id": _text_or_none(obj.get("device_id")),
                    "country": country_of(reader, obj.get("remote_ip")),
                    "referrer_host": referrer_host_of(obj.get("referrer_url")),
                    "store_id": _key_or_none(store_id),
                    "referrer_url": _key_or_none(referrer_url),
                    "event_ts": ts.replace(tzinfo=None),
                    "event_date": ts.date(),
                }
            )
    counts["quarantined"] = sum(reasons.values())
    counts["silver"] = len(silver)

    def daily(key: str, fill: str | None = None) -> dict[tuple[date, str], list[dict]]:
        groups: dict[tuple[date, str], list[dict]] = defaultdict(list)
        for row in silver:
            value = row[key] if row[key] is not None else fill
            groups[(row["event_date"], value)].append(row)
        return groups

    def visitors(rows: list[dict]) -> int:
        return len({r["device_id"] for r in rows if r["device_id"] is not None})

    product_views_daily = [
        {
            "report_date": day,
            "product_id": pid,
            "view_count": len(rows),
            "unique_visitors": visitors(rows),
            "last_view_time": max(r["event_ts"] for r in rows),
        }
        for (day, pid), rows in sorted(daily("product_id").items())
    ]
    country_views_daily = [
        {"report_date": day, "country": c, "view_count": len(rows), "unique_visitors": visitors(rows)}
        for (day, c), rows in sorted(daily("country", UNKNOWN_COUNTRY).items())
    ]
    referrer_views_daily = [
        {
            "report_date": day,
            "referrer_host": host,
            "view_count": len(rows),
            "unique_visitors": visitors(rows),
        }
        for (day, host), rows in sorted(daily("referrer_host", DIRECT_REFERRER).items())
    ]
    store_views_daily = [
        {"report_date": day, "store_id": store, "view_count": len(rows), "unique_visitors": visitors(rows)}
        for (day, store), rows in sorted(daily("store_id", UNKNOWN_STORE).items())
    ]
    referrer_url_views_daily = [
        {"report_date": day, "referrer_url": url, "view_count": len(rows), "unique_visitors": visitors(rows)}
        for (day, url), rows in sorted(daily("referrer_url", DIRECT_REFERRER).items())
    ]
    result = {
        "counts": counts,
        "quarantine_reasons": dict(reasons),
        "product_views_daily": product_views_daily,
        "country_views_daily": country_views_daily,
        "referrer_views_daily": referrer_views_daily,
        "store_views_daily": store_views_daily,
        "referrer_url_views_daily": referrer_url_views_daily,
    }
    if keep_silver:
        result["silver"] = silver
    return result


# ---------------------------------------------------------------------------


def _summary(result: dict) -> str:
    lines = [f"counts: {result['counts']}", f"quarantine reasons: {result['quarantine_reasons']}"]
    for key, value in result.items():
        if isinstance(value, list):
            lines.append(f"{key}: {len(value)} rows")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Reference counts and gold tables of raw files.")
    parser.add_argument("dataset", choices=("access", "product-views"))
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--format", default="combined", help="combined, response_time or a LogFormat")
    args = parser.parse_args(argv)
    if args.dataset == "access":
        print(_summary(reference_access_logs(args.paths, args.format)))
    else:
        print(_summary(reference_product_views(args.paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
