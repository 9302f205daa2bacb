"""Realistic synthetic inputs: Apache access logs, product-view and web-event JSON events.

The generators are deterministic for a given seed and fast enough to be the
benchmark data source (2 million access-log lines in well under a minute):
every pool (IPs, user agents, requests, referrers, response times) is built
once, each chunk of lines draws its random fields in bulk, and lines are
written with plain string formatting in large blocks.

Both generators can mix in the bad input real feeds contain (blank lines, CRLF
endings, ``"-" 408`` lines, escaped quotes, truncated lines, TLS handshakes
sent to port 80, unparseable or absurd dates, duplicates; invalid JSON, arrays,
missing keys, bad timestamps ...). They return a dict counting what they wrote
by kind, including the counts the pipeline must end with (``expected_*``).

CLI::

    python -m lakehouse_dev.samples access --lines N --out PATH [--format combined|response_time]
    python -m lakehouse_dev.samples product-views --events N --out PATH
    python -m lakehouse_dev.samples web-events --events N --out PATH
    python -m lakehouse_dev.samples committed [--out-dir sample_logs]   # the committed samples
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

COMBINED_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
RESPONSE_TIME_FORMAT = COMBINED_FORMAT + " %D"
LOG_FORMATS = {"combined": COMBINED_FORMAT, "response_time": RESPONSE_TIME_FORMAT}

SHOP = "https://shop.example.com"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CHUNK = 100_000

# Bad-input kinds, in the order they are listed in counts and in the README.
ACCESS_BAD_KINDS = (
    "blank",  # empty or whitespace-only line: counted skip
    "crlf",  # valid line ending in \r\n: valid
    "dash_408",  # '"-" 408 - "-" "-"': valid, endpoint "-"
    "escaped_quote",  # \" inside the user agent: valid
    "truncated",  # cut inside the user agent, no closing quote: quarantine
    "binary_garbage",  # raw TLS ClientHello bytes, not UTF-8: quarantine
    "bad_date",  # [32/Foo/2024:99:99:99 +0000]: quarantine
    "out_of_range_date",  # well-formed date in 1970: quarantine
    "repeated",  # byte-identical copy of an earlier valid line: a request of its own
)
_ACCESS_QUARANTINED = ("truncated", "binary_garbage", "bad_date", "out_of_range_date")

VIEW_BAD_KINDS = (
    "blank",  # empty or whitespace-only line: counted skip
    "invalid_json",  # truncated object: quarantine
    "json_array",  # a JSON array instead of an object: quarantine
    "missing_product_id",  # key absent, "" or null: quarantine
    "bad_timestamp",  # "yesterday" & co., no time_stamp: quarantine
    "out_of_range_date",  # time_stamp 0 / 1970 timestamp: quarantine
    "duplicate",  # exact copy of an earlier valid event (same _id): counted once
)
_VIEW_QUARANTINED = (
    "invalid_json",
    "json_array",
    "missing_product_id",
    "bad_timestamp",
    "out_of_range_date",
)


# ---------------------------------------------------------------------------
# shared helpers


def _start_epoch(start: str | date | datetime) -> int:
    """UTC epoch seconds of ``start`` (a date means its UTC midnight)."""
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    if not isinstance(start, datetime):
        start = datetime(start.year, start.month, start.day)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp())


def _bad_per_kind(n: int, bad: bool, override: int | None) -> int:
    if not bad:
        return 0
    if override is not None:
        return override
    if n < 30:
        return 0
    if n < 100:
        return 1
    return max(2, n // 1000)


def _zipf_cum(n: int, s: float = 1.0, q: float = 2.0) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights for ranks 0..n-1."""
    cum, total = [], 0.0
    for r in range(n):
        total += 1.0 / (r + q) ** s
        cum.append(total)
    return cum


_SIXTY = range(60)


def _time_grid(rng: random.Random, n: int, start: int, span: int) -> Iterator[int]:
    """``n`` UTC epoch seconds over ``[start, start+span)``, increasing with jitter.

    Traffic follows a daily curve (quiet around 03:00 UTC, busy around 15:00 UTC);
    about one line in five is a second or more out of order, as in real logs.
    """
    minutes = max(1, span // 60)
    weights = []
    for m in range(minutes):
        hour = (m % 1440) / 60.0
        day_factor = 1.0 + 0.08 * ((m // 1440) % 3 - 1)
        weights.append((0.25 + 0.75 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3) / 24))) * day_factor)
    total = sum(weights)
    jitter = (0,) * 28 + (-1, 1, -1, 1, -2, 2, -5)
    emitted, acc = 0, 0.0
    last = start + span - 1
    for m in range(minutes):
        acc += weights[m]
        upto = n if m == minutes - 1 else round(n * acc / total)
        k = upto - emitted
        if k <= 0:
            continue
        base = start + m * 60
        jit = rng.choices(jitter, k=k)
        spread = rng.choices(_SIXTY, k=k)
        for j in range(k):
            t = base + (j * 60 + spread[j]) // k + jit[j]
            yield start if t < start else (last if t > last else t)
        emitted = upto


def _open_geoip():
    """The GeoLite2-City reader shipped by maxminddb-geolite2, or None."""
    try:
        import maxminddb
        from geolite2 import geolite2
    except ImportError:  # pragma: no cover - dependency of the project
        return None
    try:
        return maxminddb.open_database(geolite2.filename)
    except (OSError, ValueError):  # pragma: no cover
        return None


def _resolves(reader, ip: str) -> bool:
    if reader is None:
        return True
    rec = reader.get(ip)
    return bool(rec and (rec.get("country") or {}).get("iso_code"))


# Well-known, densely allocated public /8s per region (RIR allocations); none holds
# private or reserved space except 203.0.113.0/24, skipped below.
_V4_FIRST_OCTETS = (
    # North America
    (24, 6), (50, 3), (63, 2), (64, 2), (66, 3), (67, 3), (68, 3), (69, 2), (70, 2), (71, 3),
    (72, 3), (73, 4), (74, 2), (75, 3), (76, 3), (96, 2), (97, 2), (98, 3), (99, 3), (104, 2),
    (107, 2), (108, 2), (173, 3), (174, 3), (184, 2), (199, 1), (204, 1), (206, 1), (208, 1),
    # Europe
    (2, 2), (5, 3), (31, 2), (37, 2), (46, 3), (62, 2), (77, 2), (78, 2), (79, 2), (80, 2),
    (81, 2), (82, 2), (83, 2), (84, 2), (85, 2), (86, 2), (87, 2), (88, 2), (89, 2), (90, 2),
    (91, 2), (92, 2), (93, 2), (94, 2), (95, 2), (109, 2), (176, 2), (178, 2), (185, 2),
    (188, 2), (193, 1), (194, 1), (195, 1), (212, 1), (213, 1), (217, 1),
    # Asia-Pacific
    (1, 2), (14, 2), (27, 2), (36, 2), (39, 1), (42, 2), (49, 2), (58, 2), (59, 2), (60, 1),
    (61, 1), (101, 2), (103, 2), (110, 2), (112, 2), (113, 2), (114, 2), (115, 2), (116, 2),
    (117, 2), (118, 2), (119, 2), (120, 1), (121, 2), (122, 2), (123, 2), (124, 1), (125, 1),
    (175, 1), (180, 1), (182, 1), (183, 1), (202, 1), (203, 1), (210, 1), (211, 1), (218, 1),
    (220, 1), (222, 1),
    # Latin America / Africa
    (177, 2), (179, 1), (181, 1), (186, 1), (187, 2), (189, 2), (190, 1), (191, 1), (200, 1),
    (201, 1), (41, 1), (102, 1), (105, 1), (154, 1), (196, 1), (197, 1),
)
# /32-ish IPv6 prefixes of large access networks; random hosts in them resolve.
_V6_PREFIXES = (
    "2003::/19", "2601::/20", "2600:1700::/28", "2a01:e00::/26", "240e::/20", "2a02:8100::/27",
    "2409:10::/28", "2a00:23c0::/27", "2001:56a::/32", "2600:6c00::/24", "2a02:c7c::/30",
)  # fmt: skip


def _ip_pool(rng: random.Random, size: int, reader, ipv6_share: float = 0.05) -> list[str]:
    """``size`` distinct public IPs that the GeoIP db resolves to a country."""
    octets = [o for o, _ in _V4_FIRST_OCTETS]
    o_cum, acc = [], 0
    for _, w in _V4_FIRST_OCTETS:
        acc += w
        o_cum.append(acc)
    nets = [ipaddress.IPv6Network(p) for p in _V6_PREFIXES]
    seen: set[str] = set()
    pool: list[str] = []
    while len(pool) < size:
        if rng.random() < ipv6_share:
            net = nets[rng.randrange(len(nets))]
            host = rng.getrandbits(128 - net.prefixlen)
            ip = ipaddress.IPv6Address(int(net.network_address) + host).compressed
        else:
            first = rng.choices(octets, cum_weights=o_cum)[0]
            second = rng.randrange(256)
            if first == 203 and second == 0:  # 203.0.113.0/24 is TEST-NET-3
                continue
            ip = f"{first}.{second}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ip in seen or not _resolves(reader, ip):
            continue
        seen.add(ip)
        pool.append(ip)
    return pool


def _user_agents() -> tuple[list[str], list[str], list[str]]:
    """(browser agents, bot agents, tool agents): a few hundred distinct strings."""
    browsers: list[str] = []
    win = ("Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64")
    mac, linux = "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64"
    chrome_builds = {
        114: "5735.199", 115: "5790.171", 116: "5845.188", 117: "5938.149", 118: "5993.117",
        119: "6045.199", 120: "6099.224", 121: "6167.184", 122: "6261.128", 123: "6312.86",
    }  # fmt: skip
    for v, build in chrome_builds.items():
        for plat in (*win, mac, linux):
            browsers.append(
                f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{v}.0.0.0 Safari/537.36"
            )
        for plat in win[:1] + (mac,):
            browsers.append(
                f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{build}"
            )
        browsers.append(
            f"Mozilla/5.0 ({win[0]}) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{v}.0.0.0 Safari/537.36 OPR/{v - 14}.0.0.0"
        )
    androids = (
        "Linux; Android 10; K", "Linux; Android 13; SM-S918B", "Linux; Android 14; Pixel 8",
        "Linux; Android 12; SM-A525F", "Linux; Android 13; M2101K6G", "Linux; Android 11; moto g(30)",
        "Linux; Android 14; SM-A546B", "Linux; Android 13; Pixel 7a", "Linux; Android 12; CPH2239",
        "Linux; Android 10; SM-G973F",
    )  # fmt: skip
    for v in range(116, 124):
        for plat in androids:
            browsers.append(
                f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{v}.0.{chrome_builds[v]} Mobile Safari/537.36"
            )
    for v in range(115, 125):
        for plat in (
            "Windows NT 10.0; Win64; x64",
            "Macintosh; Intel Mac OS X 10.15",
            "X11; Ubuntu; Linux x86_64",
            "Android 14; Mobile",
        ):
            engine = f"Gecko/{v}.0" if plat.startswith("Android") else "Gecko/20100101"
            browsers.append(f"Mozilla/5.0 ({plat}; rv:{v}.0) {engine} Firefox/{v}.0")
    safari = ("16.5", "16.6", "17.0", "17.1", "17.2", "17.2.1", "17.3", "17.4")
    for v in safari:
        browsers.append(
            f"Mozilla/5.0 ({mac}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15"
        )
        ios = v.replace(".", "_")
        for dev in ("iPhone; CPU iPhone OS", "iPad; CPU OS"):
            browsers.append(
                f"Mozilla/5.0 ({dev} {ios} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1"
            )
        browsers.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1"
        )
        browsers.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Mobile/15E148 Instagram 319.0.2.24.108 "
            f"(iPhone14,5; iOS {ios}; en_US; en; scale=3.00; 1170x2532; 560931521)"
        )
    for v in ("21.0", "22.0", "23.0", "24.0"):
        for model in ("SM-S911B", "SM-A536B", "SM-G991B"):
            browsers.append(
                f"Mozilla/5.0 (Linux; Android 13; SAMSUNG {model}) AppleWebKit/537.36 "
                f"(KHTML, like Gecko) SamsungBrowser/{v} Chrome/115.0.0.0 Mobile Safari/537.36"
            )
    bots = [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/122.0.6261.94 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        "Googlebot-Image/1.0",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
        "+https://openai.com/gptbot)",
        "Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    ]
    tools = [
        *(f"curl/{v}" for v in ("7.68.0", "7.81.0", "7.88.1", "8.4.0", "8.5.0", "8.6.0")),
        *(f"python-requests/{v}" for v in ("2.25.1", "2.28.1", "2.31.0")),
        "Go-http-client/1.1",
        "Go-http-client/2.0",
        "Wget/1.21.3",
        "Apache-HttpClient/4.5.13 (Java/11.0.18)",
        "okhttp/4.12.0",
        "axios/1.6.7",
        "PostmanRuntime/7.36.3",
    ]
    return browsers, bots, tools


# Crawlers come from their operators' published ranges.
_BOT_NETS = {
    "Googlebot": "66.249.66.", "bingbot": "157.55.39.", "YandexBot": "5.255.231.",
    "AhrefsBot": "54.36.148.", "SemrushBot": "185.191.171.", "DuckDuckBot": "20.191.45.",
    "Baiduspider": "116.179.32.", "Applebot": "17.241.219.", "facebookexternalhit": "69.171.249.",
    "GPTBot": "20.171.207.", "PetalBot": "114.119.134.",
}  # fmt: skip


def _bot_ip(rng: random.Random, agent: str) -> str | None:
    for name, prefix in _BOT_NETS.items():
        if name in agent:
            return f"{prefix}{rng.randrange(1, 255)}"
    return None


_SEARCH_TERMS = (
    "gold+ring", "necklace", "silver%20bracelet", "earrings", "wedding+band", "diamond",
    "watch", "pearl+earrings", "engagement+ring", "men%27s+ring", "gift+for+her", "anklet",
    "rose+gold", "birthstone", "chain", "pendant", "sale", "cufflinks",
)  # fmt: skip


def _product_ids(rng: random.Random, n: int) -> list[str]:
    ids = rng.sample(range(10_000, 99_999), n)
    return [str(i) for i in ids]


# ---------------------------------------------------------------------------
# access logs

# status classes: (status, weight) ; bytes are decided from the status below
_STATUS_CLASSES = {
    "page": ((200, 900), (304, 30), (301, 15), (404, 30), (500, 15), (503, 10)),
    "api": ((200, 930), (404, 40), (500, 20), (503, 10)),
    "static": ((200, 700), (304, 280), (404, 20)),
    "post": ((200, 780), (302, 150), (400, 40), (500, 20), (503, 10)),
    "fixed": ((200, 1),),
}
# response time pools (microseconds): (median, sigma) of a log-normal
_RT_CLASSES = {
    "page": (45_000, 0.7),
    "api": (18_000, 0.6),
    "static": (700, 0.5),
    "post": (220_000, 0.6),
    "fixed": (300, 0.3),
}


def _expand(pairs, size: int = 1000) -> list:
    """A list of about ``size`` entries in which each item appears per its weight."""
    total = sum(w for _, w in pairs)
    out = []
    for item, w in pairs:
        out.extend([item] * max(1, round(size * w / total)))
    return out


def _request_pool(rng: random.Random, products: list[str]):
    """[(method, uri, class, size)] and cumulative weights."""
    entries: list[tuple[str, str, str, int]] = []
    weights: list[float] = []

    def add(method: str, uri: str, cls: str, size: int, weight: float) -> None:
        entries.append((method, uri, cls, size))
        weights.append(weight)

    add("GET", "/", "page", 48_213, 8.0)
    add("HEAD", "/", "page", 0, 0.4)
    zipf = _zipf_cum(len(products), 1.05, 3.0)
    share = [zipf[0]] + [zipf[i] - zipf[i - 1] for i in range(1, len(zipf))]
    total = zipf[-1]
    refs = ("home", "search", "email", "ads", "recs")
    for pid, w in zip(products, share, strict=True):
        w = w / total
        page = 30_000 + rng.randrange(25_000)
        add("GET", f"/products/{pid}", "page", page, 26.0 * w)
        for ref in refs:
            add("GET", f"/products/{pid}?ref={ref}", "page", page, 1.6 * w)
        add("GET", f"/api/v1/products/{pid}", "api", 1_200 + rng.randrange(2_500), 8.0 * w)
        add("GET", f"/static/img/products/{pid}.jpg", "static", 40_000 + rng.randrange(160_000), 12.0 * w)
        add("HEAD", f"/products/{pid}", "page", 0, 0.3 * w)
    for term in _SEARCH_TERMS:
        add("GET", f"/search?q={term}", "page", 38_000 + rng.randrange(20_000), 5.0 / len(_SEARCH_TERMS))
    add("GET", "/search?q=gold+ring&page=2", "page", 41_022, 0.3)
    add("GET", "/cart", "page", 21_480, 3.0)
    add("POST", "/cart/add", "post", 312, 1.5)
    add("POST", "/api/v1/cart", "post", 845, 1.0)
    add("GET", "/checkout", "page", 27_301, 1.5)
    add("POST", "/checkout", "post", 1_532, 0.8)
    add("GET", "/checkout/confirmation", "page", 18_923, 0.6)
    add("GET", "/account", "page", 15_220, 0.5)
    add("POST", "/account/login", "post", 488, 0.5)
    add("GET", "/api/v1/recommendations?limit=8", "api", 4_812, 2.0)
    for asset, size in (
        ("/static/css/app.3f9a1c.css", 88_213),
        ("/static/js/app.8b2e4d.js", 241_117),
        ("/static/js/vendor.1c7f0a.js", 512_330),
        ("/static/fonts/inter-var.woff2", 97_864),
        ("/static/img/logo.svg", 3_411),
    ):
        add("GET", asset, "static", size, 3.0)
    add("GET", "/favicon.ico", "static", 1_150, 2.0)
    add("GET", "/robots.txt", "fixed", 214, 0.8)
    add("GET", "/sitemap.xml", "fixed", 88_412, 0.3)
    add("GET", "/wp-login.php", "fixed", 1_543, 0.15)  # scanners: always 404, see below
    add("GET", "/.env", "fixed", 1_543, 0.1)
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return entries, cum


def _referrer_pool(rng: random.Random, products: list[str]) -> tuple[list[str], list[str]]:
    """(referrers for pages, referrers for assets) as weighted, expanded lists."""
    external = [
        ("https://www.google.com/", 22), ("https://www.google.de/", 3), ("https://www.google.co.uk/", 3),
        ("https://www.bing.com/search?q=gold+ring", 3), ("https://duckduckgo.com/", 2),
        ("https://www.facebook.com/", 4), ("https://l.facebook.com/", 2), ("https://t.co/Xk3pQ9aZ1m", 1),
        ("https://www.instagram.com/", 4), ("https://www.pinterest.com/", 2),
        ("https://mail.google.com/", 1), ("https://news.ycombinator.com/", 0.3),
        ("android-app://com.google.android.gm/", 0.5),
    ]  # fmt: skip
    internal = [(f"{SHOP}/", 10), (f"{SHOP}/cart", 3), (f"{SHOP}/search?q=necklace", 2)]
    for pid in products[:60]:
        internal.append((f"{SHOP}/products/{pid}", 0.4))
    page = _expand([("-", 40.0), *external, *internal], 2000)
    rng.shuffle(page)
    assets = _expand([("-", 5.0), *internal], 1000)
    rng.shuffle(assets)
    return page, assets


def _rt_pools(rng: random.Random) -> dict[str, list[int]]:
    return {
        cls: [max(50, int(rng.lognormvariate(math.log(med), sig))) for _ in range(2048)]
        for cls, (med, sig) in _RT_CLASSES.items()
    }


class _Stamp:
    """Apache ``%t`` text of (utc epoch second, offset), cached per local day."""

    def __init__(self) -> None:
        self._hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
        self._days: dict[int, str] = {}

    def __call__(self, utc: int, offset_seconds: int, offset_text: str) -> str:
        local = utc + offset_seconds
        day, sec = divmod(local, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            d = date(1970, 1, 1) + timedelta(days=day)
            prefix = self._days[day] = f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}:"
        return f"[{prefix}{self._hms[sec]} {offset_text}]"


_OFFSETS = ((0, "+0000"),) * 85 + ((-7 * 3600, "-0700"),) * 10 + ((5 * 3600 + 1800, "+0530"),) * 5

_ESCAPED_AGENTS = (
    'Mozilla/5.0 (compatible; \\"Nessus\\"; +http://www.tenable.com/)',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \\"Chrome\\"/99.0 Safari/537.36',
    'python-requests/2.31.0 \\"monitor\\"',
    'Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\" Firefox/115.0',
)


def _tls_client_hello(rng: random.Random) -> str:
    """A TLS 1.2/1.3 ClientHello as sent by a browser to port 80, as latin-1 text.

    Bytes that any line splitter might treat as a line break (\\n, \\r, \\v, \\f,
    \\x1c-\\x1e, \\x85) are left out so that the garbage stays exactly one line.
    """
    forbidden = {0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85}

    def rand_bytes(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            b = rng.randrange(256)
            if b not in forbidden:
                out.append(b)
        return bytes(out)

    body = (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
        + rand_bytes(32)
        + b"\x20"
        + rand_bytes(32)
        + b"\x00\x20\xfa\xfa\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
        + b"\xcc\xa9\xcc\xa8\xc0\x13\xc0\x14\x00\x9c\x00\x9d\x00\x2f\x00\x35\x01\x00\x01\x93"
        + rand_bytes(24)
    )
    assert not any(b in forbidden for b in body)
    return body.decode("latin-1")


def write_access_log(
    path: str | Path,
    n_lines: int,
    *,
    seed: int = 7,
    start: str | date | datetime = "2024-03-01",
    days: int = 3,
    log_format: str = "combined",
    bad_lines: bool = True,
    bad_per_kind: int | None = None,
    distinct_ip_share: float | None = None,
) -> dict:
    """Write ``n_lines`` access-log lines (every line ends with ``\\n``) to ``path``.

    ``log_format`` is ``"combined"`` (Apache Combined) or ``"response_time"``
    (Combined + `` %D``, microseconds). Client times are spread over ``days`` UTC
    days from ``start``; each line is written with its server's offset (+0000,
    -0700 or +0530). With ``bad_lines``, ``bad_per_kind`` lines of each kind in
    :data:`ACCESS_BAD_KINDS` are mixed in (default: ``max(2, n_lines // 1000)``).
    Clients: about 3 % of the lines' count, Zipf-distributed; with ``distinct_ip_share``
    (e.g. 0.9), that share of the lines each come from an IP of their own (a busy site
    under a botnet or a CDN-less long tail) and the rest from the Zipf pool.

    Returns counts: ``lines``, ``valid_plain`` and one entry per bad kind, plus
    ``expected_read``, ``expected_skipped_blank``, ``expected_quarantined``,
    ``expected_duplicates`` and ``expected_silver`` for the pipeline.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {sorted(LOG_FORMATS)}, not {log_format!r}")
    if n_lines < 0 or days < 1:
        raise ValueError("n_lines must be >= 0 and days >= 1")
    with_rt = log_format == "response_time"
    rng = random.Random(seed)
    reader = _open_geoip()
    t0 = _start_epoch(start)
    span = days * 86400

    # --- pools -----------------------------------------------------------
    browsers, bots, tools = _user_agents()
    rng.shuffle(browsers)
    agents = browsers + bots + tools
    # browsers follow a Zipf curve; bots and tools share about 9 % and 3 % of clients
    ua_cum, acc = [], 0.0
    b_cum = _zipf_cum(len(browsers), 0.9, 4.0)
    for i in range(len(browsers)):
        ua_cum.append(88.0 * b_cum[i] / b_cum[-1])
    acc = ua_cum[-1]
    for _ in bots:
        acc += 9.0 / len(bots)
        ua_cum.append(acc)
    for _ in tools:
        acc += 3.0 / len(tools)
        ua_cum.append(acc)

    n_ips = max(20, round(0.03 * n_lines))
    n_own = round((distinct_ip_share or 0.0) * n_lines)
    ips = _ip_pool(rng, n_ips + n_own, reader)
    own_ips, ips = ips[n_ips:], ips[:n_ips]
    # Each client mostly keeps one agent; crawlers come from their own networks.
    primary = rng.choices(agents, cum_weights=ua_cum, k=n_ips)
    taken = set(ips)
    for i, agent in enumerate(primary):
        bot_ip = _bot_ip(rng, agent)
        if bot_ip is not None and bot_ip not in taken:
            taken.add(bot_ip)
            ips[i] = bot_ip
    ip_cum = _zipf_cum(n_ips, 0.85, 8.0)
    rng_ip_index = range(n_ips)
    # Internal health checks (private, unresolvable) and scanners probing for files.
    health_ips = [f"10.0.{rng.randrange(0, 4)}.{rng.randrange(2, 250)}" for _ in range(3)]

    products = _product_ids(rng, 400)
    requests, req_cum = _request_pool(rng, products)
    n_req = range(len(requests))
    page_refs, asset_refs = _referrer_pool(rng, products)
    status_tables = {cls: _expand(pairs, 1000) for cls, pairs in _STATUS_CLASSES.items()}
    for table in status_tables.values():
        rng.shuffle(table)
    rt_pools = _rt_pools(rng) if with_rt else None
    protocols = ("HTTP/1.1",) * 70 + ("HTTP/2.0",) * 28 + ("HTTP/1.0",) * 2
    size_jitter = [rng.randrange(-900, 900) for _ in range(1024)]
    stamp = _Stamp()

    # --- where the bad lines go -------------------------------------------
    per_kind = _bad_per_kind(n_lines, bad_lines, bad_per_kind)
    kinds_wanted = [k for k in ACCESS_BAD_KINDS for _ in range(per_kind)]
    if len(kinds_wanted) > n_lines // 3:
        raise ValueError(f"too many bad lines ({len(kinds_wanted)}) for {n_lines} lines")
    lo = min(10, n_lines // 10)
    positions = rng.sample(range(lo, n_lines), len(kinds_wanted)) if kinds_wanted else []
    bad_at = dict(zip(positions, kinds_wanted, strict=True))

    counts = dict.fromkeys(("lines", "valid_plain", *ACCESS_BAD_KINDS), 0)
    times = _time_grid(rng, n_lines, t0, span)
    # A valid line must never equal another one by chance (only "repeated"
    # lines are copies). Identical lines share their UTC second, and times
    # never go back more than a few seconds, so the lines of the current and
    # the previous 30 s bucket are all that must be remembered.
    seen: dict[int, set[str]] = {}
    top_bucket = -1
    last_plain: str | None = None
    rt_suffix = ""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for chunk_start in range(0, n_lines, _CHUNK):
            k = min(_CHUNK, n_lines - chunk_start)
            ip_idx = rng.choices(rng_ip_index, cum_weights=ip_cum, k=k)
            own = [rng.random() < (distinct_ip_share or 0.0) for _ in range(k)] if n_own else None
            req_idx = rng.choices(n_req, cum_weights=req_cum, k=k)
            ua_draw = rng.choices(agents, cum_weights=ua_cum, k=k)
            offs = rng.choices(_OFFSETS, k=k)
            protos = rng.choices(protocols, k=k)
            rnd = [rng.random() for _ in range(k)]
            rnd2 = [rng.random() for _ in range(k)]
            lines: list[str] = []
            append = lines.append
            for j in range(k):
                pos = chunk_start + j
                utc = next(times)
                b = utc // 30
                if b > top_bucket:
                    for old in [x for x in seen if x < b - 1]:
                        del seen[old]
                    top_bucket = b
                recent = seen.get(b)
                if recent is None:
                    recent = seen[b] = set()
                kind = bad_at.get(pos)
                if kind == "blank":
                    append(("", "   ", " \t ")[counts["blank"] % 3])
                    counts["blank"] += 1
                    continue
                if kind == "binary_garbage":
                    append(_tls_client_hello(rng))
                    counts["binary_garbage"] += 1
                    continue
                if kind == "repeated" and last_plain is not None:
                    append(last_plain)
                    counts["repeated"] += 1
                    continue
                r = rnd[j]
                r2 = rnd2[j]
                off_s, off_t = offs[j]
                ts = stamp(utc, off_s, off_t)
                if kind == "dash_408":
                    ip = ips[ip_idx[j]]
                    if with_rt:
                        rt_suffix = f" {20_000_000 + int(r * 900_000)}"
                    line = f'{ip} - - {ts} "-" 408 - "-" "-"{rt_suffix}'
                    if line in recent:
                        kind = None  # vanishingly rare: fall back to a normal line
                    else:
                        recent.add(line)
                        append(line)
                        counts["dash_408"] += 1
                        continue
                if kind == "bad_date":
                    ts = "[32/Foo/2024:99:99:99 +0000]"
                elif kind == "out_of_range_date":
                    n_oor = counts["out_of_range_date"]
                    ts = f"[01/Jan/1970:00:{n_oor // 60 % 60:02d}:{n_oor % 60:02d} +0000]"
                # --- a normal request ---------------------------------------
                for _attempt in range(50):
                    if r < 0.01:
                        ip = health_ips[int(r * 300)]
                        method, uri, cls, size = "GET", "/healthz", "fixed", 2
                        agent = "kube-probe/1.28"
                        ref = "-"
                    else:
                        ipi = ip_idx[j]
                        ip = ips[ipi]
                        if own is not None and own[j] and own_ips:
                            ip = own_ips.pop()
                        method, uri, cls, size = requests[req_idx[j]]
                        agent = primary[ipi] if r < 0.9 else ua_draw[j]
                        refs = asset_refs if cls == "static" else page_refs
                        ref = refs[int(r2 * 7919) % len(refs)]
                    status = status_tables[cls][int(r2 * 1_000_003) % 1000]
                    if uri in ("/wp-login.php", "/.env"):
                        status = 404
                    if method == "HEAD" or status == 304:
                        nbytes = "-"
                    elif status in (301, 302):
                        nbytes = str(228 + int(r2 * 97) % 12)
                    elif status == 404:
                        nbytes = "1543"
                    elif status >= 500:
                        nbytes = "-" if status == 503 else "532"
                    elif status == 400:
                        nbytes = "226"
                    elif cls in ("page", "api", "post"):
                        nbytes = str(size + size_jitter[int(r2 * 104_729) % 1024] * (size // 4000 + 1) // 8)
                    else:
                        nbytes = str(size)
                    if with_rt:
                        pool = rt_pools[cls]
                        us = pool[int(r2 * 2_000_003) % 2048]
                        if status >= 500:
                            us = us * 7 if status == 500 else us // 20 + 80
                        rt_suffix = f" {us}"
                    if kind == "escaped_quote":
                        agent = _ESCAPED_AGENTS[counts["escaped_quote"] % len(_ESCAPED_AGENTS)]
                    line = (
                        f'{ip} - - {ts} "{method} {uri} {protos[j]}" {status} {nbytes} '
                        f'"{ref}" "{agent}"{rt_suffix}'
                    )
                    if line not in recent:
                        break
                    # a chance collision: draw this line again
                    r, r2 = rng.random(), rng.random()
                    ip_idx[j] = rng.choices(rng_ip_index, cum_weights=ip_cum)[0]
                    req_idx[j] = rng.choices(n_req, cum_weights=req_cum)[0]
                else:  # pragma: no cover - would need an absurdly tiny pool
                    raise RuntimeError("could not draw a unique access-log line")
                if kind in ("bad_date", "out_of_range_date"):
                    append(line)
                    counts[kind] += 1
                    continue
                if kind == "truncated":
                    # cut inside the user agent: keep its opening quote and a few chars
                    cut = len(line) - len(rt_suffix) - 1 - len(agent) + 1 + (len(agent) * 2) // 5
                    append(line[:cut])
                    counts["truncated"] += 1
                    continue
                recent.add(line)
                if kind == "crlf":
                    append(line + "\r")
                    counts["crlf"] += 1
                    continue
                if kind == "escaped_quote":
                    counts["escaped_quote"] += 1
                else:
                    counts["valid_plain"] += 1
                    last_plain = line
                append(line)
            lines.append("")
            out.write("\n".join(lines).encode("latin-1"))
    counts["lines"] = n_lines
    return _with_expected(counts, _ACCESS_QUARANTINED, ())


def _with_expected(counts: dict, quarantined_kinds: tuple[str, ...], duplicate_kinds: tuple[str, ...]) -> dict:
    q = sum(counts[k] for k in quarantined_kinds)
    duplicates = sum(counts[k] for k in duplicate_kinds)
    counts["expected_read"] = counts["lines"]
    counts["expected_skipped_blank"] = counts["blank"]
    counts["expected_quarantined"] = q
    counts["expected_duplicates"] = duplicates
    counts["expected_silver"] = counts["lines"] - counts["blank"] - q - duplicates
    return counts


# ---------------------------------------------------------------------------
# product views

_VIEW_OFFSETS = ((0, "Z"),) * 50 + ((7 * 3600, "+07:00"),) * 30 + ((-5 * 3600, "-05:00"),) * 20
_STORES = (("6", 30), ("41", 18), ("12", 12), ("29", 9), ("63", 8), ("85", 6), ("86", 5),
           ("87", 4), ("88", 3), ("101", 2), ("7", 2), ("14", 1))  # fmt: skip
_OPTION_LABELS = (("alloy", ("white-585", "red-585", "yellow-750", "platinum")),
                  ("diamond", ("sapphire", "diamond-Brillant", "zirconia", "ruby")),
                  ("ring size", ("48", "52", "54", "56", "60")))  # fmt: skip


class _Clock:
    """ISO-8601 and ``local_time`` texts of (utc epoch second, offset), cached per day."""

    def __init__(self) -> None:
        self._hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
        self._days: dict[int, str] = {}

    def _split(self, local: int) -> tuple[str, str]:
        day, sec = divmod(local, 86400)
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
        return text, self._hms[sec]

    def iso(self, utc: int, millis: int, off_s: int, off_t: str) -> str:
        day, hms = self._split(utc + off_s)
        frac = f".{millis:03d}" if millis else ""
        return f"{day}T{hms}{frac}{off_t}"

    def local(self, utc: int, off_s: int) -> str:
        day, hms = self._split(utc + off_s)
        return f"{day} {hms}"


def _view_referrers(products: list[str]) -> list[str | None]:
    """Weighted, expanded referrer list; None means the key is absent."""
    pairs = [
        (None, 8.0), ("", 14.0),
        ("https://www.google.com/", 22.0), ("https://www.google.com/search?q=gold+ring", 4.0),
        ("https://WWW.Google.DE/", 2.0), ("https://www.bing.com/search?q=necklace", 3.0),
        ("https://www.facebook.com/", 6.0), ("https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.com", 2.0),
        ("https://www.instagram.com/", 5.0), ("https://www.pinterest.com/pin/8812/", 2.0),
        ("https://t.co/Xk3pQ9aZ1m", 1.0), ("http://partner.example.net:8080/deals?id=12", 1.0),
        ("https://mail.google.com/mail/u/0/", 1.5), ("https://duckduckgo.com/", 1.5),
        (f"{SHOP}/", 10.0), (f"{SHOP}/search?q=ring", 4.0), (f"{SHOP}/cart", 2.0),
    ]  # fmt: skip
    for pid in products[:40]:
        pairs.append((f"{SHOP}/products/{pid}", 0.25))
    return _expand(pairs, 2000)


def write_product_views(
    path: str | Path,
    n_events: int,
    *,
    seed: int = 11,
    start: str | date | datetime = "2024-03-01",
    days: int = 3,
    bad_records: bool = True,
    bad_per_kind: int | None = None,
) -> dict:
    """Write ``n_events`` JSON lines of product-view events (seed 004 shape) to ``path``.

    Valid events carry ``_id`` (24-hex ObjectId, sometimes ``{"$oid": ...}``) or
    ``event_id`` (a few have neither), ``product_id``, ``device_id`` (from a pool
    about a quarter the size of the events; 1 % have none), ``store_id``,
    ``referrer_url`` (absent, empty or a URL), ``remote_ip`` (public IPs the
    GeoLite2 db resolves, 2 % private ones that it does not), ``user_agent``,
    either ``timestamp`` (ISO-8601 with Z/+07:00/-05:00) or ``time_stamp`` (epoch
    seconds), ``local_time``, ``collection`` and sometimes unknown fields
    (``option``, ``cart_id``, ``current_url``, ``resolution``, ``api_version``).
    With ``bad_records``, ``bad_per_kind`` records of each kind in
    :data:`VIEW_BAD_KINDS` are mixed in. Returns counts like
    :func:`write_access_log`.
    """
    if n_events < 0 or days < 1:
        raise ValueError("n_events must be >= 0 and days >= 1")
    rng = random.Random(seed)
    reader = _open_geoip()
    t0 = _start_epoch(start)
    span = days * 86400

    browsers, bots, _tools = _user_agents()
    agents = browsers + bots[:3]
    rng.shuffle(agents)
    products = _product_ids(rng, max(20, min(5000, n_events // 15)))
    prod_cum = _zipf_cum(len(products), 1.0, 3.0)
    n_dev = max(10, n_events // 4)
    devices = [
        f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"{8 + rng.randrange(4):x}{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
        for _ in range(n_dev)
    ]
    dev_cum = _zipf_cum(n_dev, 0.7, 10.0)
    ips = _ip_pool(rng, max(10, n_dev), reader, ipv6_share=0.08)
    dev_ip = ips  # device i mostly browses from ips[i]
    dev_agent = [agents[int(rng.random() ** 2 * len(agents))] for _ in range(n_dev)]
    dev_store = rng.choices([s for s, _ in _STORES], weights=[w for _, w in _STORES], k=n_dev)
    referrers = _view_referrers(products)
    private_ips = [f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(5)]

    per_kind = _bad_per_kind(n_events, bad_records, bad_per_kind)
    kinds_wanted = [k for k in VIEW_BAD_KINDS for _ in range(per_kind)]
    if len(kinds_wanted) > n_events // 3:
        raise ValueError(f"too many bad records ({len(kinds_wanted)}) for {n_events} events")
    lo = min(10, n_events // 10)
    positions = rng.sample(range(lo, n_events), len(kinds_wanted)) if kinds_wanted else []
    bad_at = dict(zip(positions, kinds_wanted, strict=True))

    counts = dict.fromkeys(("lines", "valid_plain", *VIEW_BAD_KINDS), 0)
    times = _time_grid(rng, n_events, t0, span)
    oid_counter = rng.getrandbits(24)
    seen_idless: set[str] = set()
    last_valid: str | None = None
    clock = _Clock()
    # per-event draws, in bulk (an event may draw again for a retry: see `extra`)
    dev_draw = rng.choices(range(n_dev), cum_weights=dev_cum, k=n_events)
    pid_draw = rng.choices(products, cum_weights=prod_cum, k=n_events)
    ref_draw = rng.choices(referrers, k=n_events)
    off_draw = rng.choices(_VIEW_OFFSETS, k=n_events)
    resolutions = ("1920x1080", "1366x768", "390x844", "412x915", "1536x864")
    pos = 0
    extra = 0

    def event(utc: int) -> dict:
        nonlocal oid_counter, extra
        if extra:  # a second event for the same slot: fresh draws
            dev_i = rng.choices(range(n_dev), cum_weights=dev_cum)[0]
            pid = rng.choices(products, cum_weights=prod_cum)[0]
            ref = rng.choice(referrers)
            off_s, off_t = rng.choice(_VIEW_OFFSETS)
        else:
            dev_i, pid, ref = dev_draw[pos], pid_draw[pos], ref_draw[pos]
            off_s, off_t = off_draw[pos]
        extra += 1
        rnd = rng.random
        r = rnd()
        ev: dict = {}
        oid_counter = (oid_counter + 1) & 0xFFFFFF
        oid = f"{utc:08x}{rng.getrandbits(40):010x}{oid_counter:06x}"
        if r < 0.80:
            ev["_id"] = oid
        elif r < 0.83:
            ev["_id"] = {"$oid": oid}
        elif r < 0.98:
            ev["event_id"] = f"evt_{rng.getrandbits(64):016x}"
        # else: no id at all; the pipeline hashes the line
        r2 = rnd()
        if r2 < 0.35:
            ev["time_stamp"] = utc
        else:
            millis = int(r2 * 1_000_003) % 999 + 1 if r2 > 0.805 else 0  # about 30 %
            ev["timestamp"] = clock.iso(utc, millis, off_s, off_t)
        r3 = rnd()
        if r3 < 0.02:
            ip = private_ips[int(r3 * 250)]
        elif r3 < 0.12:
            ip = ips[int(r3 * 7_919_993) % len(ips)]
        else:
            ip = dev_ip[dev_i]
        ev["remote_ip"] = ip
        ev["user_agent"] = dev_agent[dev_i]
        r4 = rnd()
        if r4 < 0.3:
            ev["resolution"] = resolutions[int(r4 * 100) % 5]
        if rnd() >= 0.01:
            ev["device_id"] = devices[dev_i]
        if r4 > 0.6:
            ev["api_version"] = "1.0"
        ev["store_id"] = dev_store[dev_i]
        ev["local_time"] = clock.local(utc, off_s)
        r5 = rnd()
        if r5 < 0.5:
            ev["current_url"] = f"{SHOP}/products/{pid}"
        if ref is not None:
            ev["referrer_url"] = ref
        ev["collection"] = "view_product_detail"
        ev["product_id"] = pid
        if r5 > 0.85:
            ev["option"] = [
                {"option_label": label, "option_id": str(100 + i), "value_label": rng.choice(values),
                 "value_id": str(rng.randrange(1000, 9999))}
                for i, (label, values) in enumerate(_OPTION_LABELS[: rng.randrange(1, 4)])
            ]  # fmt: skip
        if rng.random() < 0.05:
            ev["cart_id"] = f"{rng.getrandbits(64):016x}"
        return ev

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for pos in range(n_events):
        utc = next(times)
        extra = 0
        kind = bad_at.get(pos)
        if kind == "blank":
            lines.append(("", "  ")[counts["blank"] % 2])
        elif kind == "duplicate" and last_valid is not None:
            lines.append(last_valid)
        elif kind == "invalid_json":
            text = json.dumps(event(utc))
            lines.append(text[: len(text) * (1 + counts[kind] % 3) // 4])
        elif kind == "json_array":
            lines.append(json.dumps([event(utc)]))
        elif kind == "missing_product_id":
            ev = event(utc)
            variant = counts[kind] % 3
            if variant == 0:
                del ev["product_id"]
            else:
                ev["product_id"] = "" if variant == 1 else None
            lines.append(json.dumps(ev))
        elif kind == "bad_timestamp":
            ev = event(utc)
            ev.pop("time_stamp", None)
            ev["timestamp"] = ("yesterday", "not a date", "2024-13-45T10:00:00Z")[counts[kind] % 3]
            lines.append(json.dumps(ev))
        elif kind == "out_of_range_date":
            ev = event(utc)
            ev.pop("time_stamp", None)
            ev.pop("timestamp", None)
            if counts[kind] % 2 == 0:
                ev["time_stamp"] = 0
            else:
                ev["timestamp"] = "1970-01-01T00:00:00Z"
            lines.append(json.dumps(ev))
        else:
            if kind == "duplicate":  # nothing valid to copy yet
                kind = None
            for _attempt in range(50):
                ev = event(utc)
                text = json.dumps(ev)
                if "_id" in ev or "event_id" in ev:
                    break
                if text not in seen_idless:  # id-less events are identified by their text
                    seen_idless.add(text)
                    break
            lines.append(text)
            if "_id" in ev or "event_id" in ev:  # an event without an id is never a duplicate
                last_valid = text
            counts["valid_plain"] += 1
        if kind is not None:
            counts[kind] += 1
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\n".join(lines))
        if lines:
            out.write("\n")
    counts["lines"] = n_events
    return _with_expected(counts, _VIEW_QUARANTINED, ("duplicate",))


# ---------------------------------------------------------------------------
# web events (seed 002)

WEB_BAD_KINDS = (
    "blank",  # empty or whitespace-only line: counted skip
    "invalid_json",  # truncated object: quarantine
    "json_array",  # a JSON array instead of an object: quarantine
    "missing_host",  # `host` absent, "" or null: quarantine
    "missing_ip",  # `ip` absent, "" or null: quarantine
    "bad_event_time",  # "yesterday" & co.: quarantine
    "out_of_range_date",  # 1970 event_time: quarantine
    "long_host",  # a host of 300 characters (longer than the export's column): quarantine
    "repeated",  # byte-identical copy of an earlier valid event: a hit of its own
)
_WEB_QUARANTINED = (
    "invalid_json", "json_array", "missing_host", "missing_ip", "bad_event_time",
    "out_of_range_date", "long_host",
)  # fmt: skip
_WEB_OFFSETS = ((0, "Z"),) * 50 + ((2 * 3600, "+02:00"),) * 30 + ((-5 * 3600, "-05:00"),) * 20
_WEB_HOSTS = (
    ("www.example.com", 50.0), ("blog.example.com", 20.0), ("shop.example.com", 15.0),
    ("docs.example.com", 10.0), ("WWW.Example.COM", 2.0),
)  # fmt: skip
_WEB_PATHS = (
    "/", "/", "/", "/about", "/pricing", "/blog", "/blog/spark-4-ansi-mode", "/blog/delta-lake-merge",
    "/docs/getting-started", "/docs/api?version=2", "/lessons/1", "/lessons/2?utm_source=newsletter",
    "/signup", "/login", "/search?q=lakehouse", "/favicon.ico", "/robots.txt",
)  # fmt: skip


def _web_referrers() -> list[str | None]:
    """Weighted referrers; None means the key is absent ("" and "-" mean direct too)."""
    pairs = [
        (None, 15.0), ("", 10.0), ("-", 8.0),
        ("https://www.google.com/", 25.0), ("https://www.google.com/search?q=lakehouse", 4.0),
        ("https://WWW.Bing.com/search?q=spark", 3.0), ("https://t.co/Xk3pQ9aZ1m", 3.0),
        ("https://www.linkedin.com/feed/", 4.0), ("https://news.ycombinator.com/item?id=39001", 3.0),
        ("https://www.reddit.com/r/dataengineering/", 3.0), ("http://partner.example.net:8080/deals", 1.0),
        ("https://www.example.com/blog", 8.0), ("https://blog.example.com/", 5.0),
    ]  # fmt: skip
    return _expand(pairs, 1000)


def write_web_events(
    path: str | Path,
    n_events: int,
    *,
    seed: int = 2,
    start: str | date | datetime = "2024-03-01",
    days: int = 2,
    bad_records: bool = True,
    bad_per_kind: int | None = None,
) -> dict:
    """Write ``n_events`` JSON lines of web events (seed 002 shape) to ``path``.

    Events come in visits: a visitor (a public IP the GeoLite2 db resolves, a user agent,
    crawlers from their operators' ranges) browses one host with hits a few seconds to
    about a minute apart (some exactly 60 s: a new session), and a visit crosses each
    UTC midnight of the span. Each event has ``ip``, ``host`` (a few in upper case),
    ``url``, ``referrer`` (absent, ``""``, ``"-"`` or a URL), ``user_agent``,
    ``event_time`` (ISO-8601 with ``Z``, ``+02:00`` or ``-05:00``, some with
    milliseconds) and sometimes a ``headers`` object the pipeline keeps as `extra`.
    Lines are in time order. With ``bad_records``, ``bad_per_kind`` records of each kind
    in :data:`WEB_BAD_KINDS` are mixed in. Returns counts like :func:`write_access_log`.
    """
    if n_events < 0 or days < 1:
        raise ValueError("n_events must be >= 0 and days >= 1")
    rng = random.Random(seed)
    reader = _open_geoip()
    t0 = _start_epoch(start)
    span = days * 86400
    browsers, bots, _tools = _user_agents()
    hosts = _expand(list(_WEB_HOSTS), 200)
    referrers = _web_referrers()
    ips = _ip_pool(rng, max(10, n_events // 8), reader, ipv6_share=0.05)

    per_kind = _bad_per_kind(n_events, bad_records, bad_per_kind)
    kinds_wanted = [k for k in WEB_BAD_KINDS for _ in range(per_kind)]
    if len(kinds_wanted) > n_events // 3:
        raise ValueError(f"too many bad records ({len(kinds_wanted)}) for {n_events} events")
    n_hits = n_events - len(kinds_wanted)

    def visitor() -> tuple[str, str, str]:
        if rng.random() < 0.1:
            agent = rng.choice(bots)
            ip = _bot_ip(rng, agent) or rng.choice(ips)
        else:
            agent, ip = rng.choice(browsers), rng.choice(ips)
        return ip, agent, rng.choice(hosts)

    def visit(first: int, n: int) -> list[tuple[int, int, str, str, str]]:
        ip, agent, host = visitor()
        hits, t = [], first * 1000
        for _ in range(n):
            hits.append((t, ip, agent, host))
            r = rng.random()
            t += 60_000 if r < 0.05 else rng.randrange(1000, 70_000) if r < 0.3 else rng.randrange(1000, 30_000)
        return hits

    # (epoch ms, ip, agent, host) of every hit: a visit across each midnight, then random visits.
    hits: list = []
    for d in range(1, days):
        midnight = (t0 + d * 86400) * 1000
        ip, agent, host = visitor()
        hits.extend((midnight + s * 1000, ip, agent, host) for s in (-20, -5, 10))
    while len(hits) < n_hits:
        n = min(n_hits - len(hits), 1 + int(rng.expovariate(1 / 4)))
        hits.extend(visit(t0 + rng.randrange(span - 3600), n))
    hits = sorted(hits[:n_hits])
    clock = _Clock()

    def event(t_ms: int, ip: str, agent: str, host: str) -> dict:
        off_s, off_t = rng.choice(_WEB_OFFSETS)
        ev: dict = {"url": rng.choice(_WEB_PATHS)}
        ref = rng.choice(referrers)
        if ref is not None:
            ev["referrer"] = ref
        ev["user_agent"] = agent
        ev["host"] = host
        ev["ip"] = ip
        if rng.random() < 0.2:
            ev["headers"] = {"accept-language": rng.choice(("en-US", "de-DE", "fr-FR")), "dnt": "1"}
        ev["event_time"] = clock.iso(t_ms // 1000, t_ms % 1000, off_s, off_t)
        return ev

    counts = dict.fromkeys(("lines", "valid_plain", *WEB_BAD_KINDS), 0)
    lo = max(1, min(10, n_events // 10))
    slots = rng.sample(range(lo, n_events), len(kinds_wanted)) if kinds_wanted else []
    bad_at = dict(zip(slots, kinds_wanted, strict=True))
    lines: list[str] = []
    queue = iter(hits)
    last_valid: str | None = None
    for pos in range(n_events):
        kind = bad_at.get(pos)
        if kind is None:
            last_valid = json.dumps(event(*next(queue)))
            lines.append(last_valid)
            counts["valid_plain"] += 1
        elif kind == "repeated":  # never before the first valid line: bad slots start at `lo`
            lines.append(last_valid or "")
        elif kind == "blank":
            lines.append(("", "  ")[counts["blank"] % 2])
        else:
            ev = event(t0 + rng.randrange(span) * 1000, *visitor())
            n = counts[kind]
            if kind == "invalid_json":
                text = json.dumps(ev)
                lines.append(text[: len(text) * (1 + n % 3) // 4])
            elif kind == "json_array":
                lines.append(json.dumps([ev]))
            elif kind in ("missing_host", "missing_ip"):
                field = kind.removeprefix("missing_")
                if n % 3 == 0:
                    del ev[field]
                else:
                    ev[field] = "" if n % 3 == 1 else None
                lines.append(json.dumps(ev))
            elif kind == "bad_event_time":
                ev["event_time"] = ("yesterday", "not a date", "2024-13-45T10:00:00Z")[n % 3]
                lines.append(json.dumps(ev))
            elif kind == "out_of_range_date":
                ev["event_time"] = f"1970-01-01T00:00:0{n % 10}Z"
                lines.append(json.dumps(ev))
            else:  # long_host
                ev["host"] = "a" * 280 + ".example.com"
                lines.append(json.dumps(ev))
        if kind is not None:
            counts[kind] += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\n".join(lines))
        if lines:
            out.write("\n")
    counts["lines"] = len(lines)
    return _with_expected(counts, _WEB_QUARANTINED, ())


def write_api_ticks(path: str | Path, *, seed: int = 3, start: str = "2024-03-01", polls: int = 96) -> dict:
    """Write polled Binance 24h-ticker responses (seed 003's source) as JSON lines: one poll
    every 30 minutes for ``polls`` polls of three symbols, mostly the whole list per line,
    every eighth poll one object per line, one response polled twice, and three bad
    records (an API error payload, an HTML error page, a non-numeric price)."""
    rng = random.Random(seed)
    t0 = int(_start_epoch(start) * 1000)
    prices = {"BTCUSDT": 62000.0, "ETHUSDT": 3400.0, "SOLUSDT": 130.0}
    lines: list[str] = []
    for i in range(polls):
        close = t0 + i * 1_800_000 + rng.randint(0, 999)
        batch = []
        for symbol in prices:
            prices[symbol] *= 1 + rng.uniform(-0.01, 0.01)
            p = prices[symbol]
            batch.append({
                "symbol": symbol, "priceChange": f"{p * 0.01:.8f}", "priceChangePercent": "1.000",
                "weightedAvgPrice": f"{p:.8f}", "prevClosePrice": f"{p * 0.99:.8f}", "lastPrice": f"{p:.8f}",
                "lastQty": "0.01000000", "bidPrice": f"{p - 0.01:.8f}", "bidQty": "1.00000000",
                "askPrice": f"{p + 0.01:.8f}", "askQty": "1.00000000", "openPrice": f"{p * 0.99:.8f}",
                "highPrice": f"{p * 1.02:.8f}", "lowPrice": f"{p * 0.98:.8f}", "volume": "1000.00000000",
                "quoteVolume": f"{p * 1000:.8f}", "openTime": close - 86_400_000, "closeTime": close,
                "firstId": 1000 + i, "lastId": 2000 + i, "count": 1000,
            })  # fmt: skip
        if i % 8 == 3:
            lines += [json.dumps(b, separators=(",", ":")) for b in batch]
        else:
            lines.append(json.dumps(batch, separators=(",", ":")))
        if i == 10:
            lines.append(json.dumps(batch, separators=(",", ":")))  # the same response polled twice
    lines.insert(20, '{"code":-1121,"msg":"Invalid symbol."}')
    lines.insert(40, "<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>")
    lines.insert(60, json.dumps({"symbol": "BTCUSDT", "lastPrice": "n/a", "closeTime": t0 + 7 * 3_600_000}, separators=(",", ":")))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"lines": len(lines), "polls": polls, "ticks": polls * len(prices), "repeated_ticks": len(prices), "bad_records": 3}


def write_ip_events(path: str | Path, *, seed: int = 0, start: str = "2024-03-01", requests: int = 60) -> dict:
    """Write IP sightings as the collector of `lakehouse serve` lands them (seed 000): one
    JSON line `{"ip", "received_at", "request_id"}` per accepted IP, ``requests`` requests
    of 1-5 IPs over the first UTC day (a few IPs come back often: 20 distinct public ones,
    about 5 % IPv6), plus three records another producer got wrong (not an IP, no
    `received_at`, cut-off JSON)."""
    rng = random.Random(seed)
    reader = _open_geoip()
    try:
        pool = _ip_pool(rng, 20, reader)
    finally:
        if reader is not None:
            reader.close()
    t0 = _start_epoch(start)
    lines: list[str] = []
    for r in range(requests):
        at = t0 + r * (86_400 // requests) + rng.randrange(600)
        received = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randrange(10**6):06d}Z"
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for ip in rng.choices(pool, weights=[1 / (i + 1) for i in range(len(pool))], k=rng.randint(1, 5)):
            lines.append(json.dumps({"ip": ip, "received_at": received, "request_id": request_id}, separators=(",", ":")))
    good, distinct = len(lines), len({json.loads(line)["ip"] for line in lines})
    lines.insert(good // 3, json.dumps({"ip": "shop.example.com", "received_at": "2024-03-01T12:00:00Z"}, separators=(",", ":")))
    lines.insert(good // 2, json.dumps({"ip": pool[0]}, separators=(",", ":")))
    lines.insert(2 * good // 3, '{"ip":"81.2.69.1')
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"lines": len(lines), "requests": requests, "sightings": good, "distinct_ips": distinct, "bad_records": 3}


# ---------------------------------------------------------------------------
# the committed samples

COMMITTED = {
    "access.log": dict(kind="access", n=3000, seed=7, log_format="combined"),
    "access_response_time.log": dict(kind="access", n=3000, seed=8, log_format="response_time"),
    "product_views.jsonl": dict(kind="product-views", n=3000, seed=11),
    "web_events.jsonl": dict(kind="web-events", n=300, seed=2),
    "api_ticks.jsonl": dict(kind="api-ticks", n=96, seed=3),
    "ip_events.jsonl": dict(kind="ip-events", n=60, seed=0),
}

_ACCESS_KIND_DOC = {
    "blank": "empty or whitespace-only line (empty, spaces, space-tab-space): skipped and counted",
    "crlf": "valid line ending in `\\r\\n`: valid",
    "dash_408": 'timed-out connection, `"-" 408 - "-" "-"`: valid, endpoint `-`',
    "escaped_quote": 'user agent containing `\\"`: valid',
    "truncated": "line cut inside the user agent (no closing quote): quarantine",
    "binary_garbage": "raw TLS ClientHello bytes (`\\x16\\x03\\x01...`, not UTF-8, contains NULs): quarantine",
    "bad_date": "unparseable date `[32/Foo/2024:99:99:99 +0000]`: quarantine",
    "out_of_range_date": "well-formed date in 1970 (`[01/Jan/1970:00:00:0N +0000]`): quarantine (out of range)",
    "repeated": "byte-identical copy of an earlier valid line (a client repeating a request within the second): valid, a request of its own",
}
_VIEW_KIND_DOC = {
    "blank": "empty or whitespace-only line: skipped and counted",
    "invalid_json": "JSON object cut short (truncated): quarantine",
    "json_array": "a JSON array `[{...}]` instead of an object: quarantine",
    "missing_product_id": "`product_id` absent, `\"\"` or `null` (in turn): quarantine",
    "bad_timestamp": '`timestamp` of `"yesterday"`, `"not a date"`, `"2024-13-45T10:00:00Z"` (in turn) and no `time_stamp`: quarantine',
    "out_of_range_date": '`time_stamp: 0` or `timestamp: "1970-01-01T00:00:00Z"` (in turn): quarantine (out of range)',
    "duplicate": "exact copy of an earlier valid event (same id, same content): counted once as a duplicate",
}
_WEB_KIND_DOC = {
    "blank": "empty or whitespace-only line: skipped and counted",
    "invalid_json": "JSON object cut short (truncated): quarantine",
    "json_array": "a JSON array `[{...}]` instead of an object: quarantine",
    "missing_host": "`host` absent, `\"\"` or `null` (in turn): quarantine",
    "missing_ip": "`ip` absent, `\"\"` or `null` (in turn): quarantine",
    "bad_event_time": '`event_time` of `"yesterday"`, `"not a date"`, `"2024-13-45T10:00:00Z"` (in turn): quarantine',
    "out_of_range_date": "`event_time` in 1970: quarantine (out of range)",
    "long_host": "a `host` of 292 characters (wider than the export's VARCHAR(255)): quarantine",
    "repeated": "byte-identical copy of an earlier valid event: valid, a hit of its own",
}


def write_committed_samples(out_dir: str | Path) -> dict[str, dict]:
    """(Re)write the committed sample files and their README into ``out_dir``."""
    out_dir = Path(out_dir)
    results: dict[str, dict] = {}
    for name, spec in COMMITTED.items():
        if spec["kind"] == "access":
            results[name] = write_access_log(
                out_dir / name, spec["n"], seed=spec["seed"], log_format=spec["log_format"]
            )
        elif spec["kind"] == "web-events":
            results[name] = write_web_events(out_dir / name, spec["n"], seed=spec["seed"])
        elif spec["kind"] == "api-ticks":
            results[name] = write_api_ticks(out_dir / name, seed=spec["seed"], polls=spec["n"])
        elif spec["kind"] == "ip-events":
            results[name] = write_ip_events(out_dir / name, seed=spec["seed"], requests=spec["n"])
        else:
            results[name] = write_product_views(out_dir / name, spec["n"], seed=spec["seed"])
    (out_dir / "README.md").write_text(_readme(results), encoding="utf-8")
    return results


def _kind_table(counts: dict, docs: dict[str, str]) -> list[str]:
    rows = ["| kind | count | what it is / expected outcome |", "|---|---:|---|"]
    for kind, doc in docs.items():
        rows.append(f"| `{kind}` | {counts[kind]} | {doc} |")
    return rows


def _expected_rows(counts: dict) -> list[str]:
    return [
        "",
        f"Expected pipeline counts: read {counts['expected_read']}, skipped blank "
        f"{counts['expected_skipped_blank']}, quarantined {counts['expected_quarantined']}, "
        f"duplicates {counts['expected_duplicates']}, silver {counts['expected_silver']}.",
    ]


def _readme(results: dict[str, dict]) -> str:
    a, rt, pv, we, ticks, ips = (results[n] for n in COMMITTED)
    lines = [
        "# Sample inputs",
        "",
        "Generated by `lakehouse_dev.samples` with fixed seeds; regenerate with",
        "",
        "```",
        "python -m lakehouse_dev.samples committed --out-dir sample_logs",
        "```",
        "",
        "Client times cover 2024-03-01 .. 2024-03-03 UTC (3 report dates). Client IPs",
        "are public addresses that the GeoLite2-City db shipped in `maxminddb-geolite2`",
        "resolves (about 5 % IPv6), except a few private ones (health checks, LAN clients)",
        "that resolve to nothing. Every line ends with `\\n`.",
        "",
        "## access.log",
        "",
        f"{a['lines']} lines, Apache **Combined** format (seed 7):",
        "",
        "```",
        COMBINED_FORMAT,
        "```",
        "",
        "Lines carry their server's offset: mostly `+0000`, some `-0700` and `+0530`, so",
        "the UTC date of some lines differs from their local date. Bytes are sometimes `-`",
        "(HEAD, 304, 503). Bad lines mixed in (each at a random position):",
        "",
        *_kind_table(a, _ACCESS_KIND_DOC),
        *_expected_rows(a),
        "",
        "## access_response_time.log",
        "",
        f"{rt['lines']} lines, Combined + `%D` (response time in microseconds; seed 8):",
        "",
        "```",
        RESPONSE_TIME_FORMAT,
        "```",
        "",
        "Same traffic model and the same kinds of bad lines, fewer of each:",
        "",
        *_kind_table(rt, _ACCESS_KIND_DOC),
        *_expected_rows(rt),
        "",
        "## product_views.jsonl",
        "",
        f"{pv['lines']} lines of JSON product-view events (seed 11), shaped like seed 004:",
        "`_id` (24-hex ObjectId; 3 % as `{\"$oid\": ...}`) or `event_id` (2 % have neither",
        "and are identified by their place: file and line), `product_id`, `device_id` (a pool about",
        "a quarter of the events; 1 % of events have none), `store_id`, `referrer_url`",
        "(absent, empty or a URL, some with upper-case hosts or a port), `remote_ip`,",
        "`user_agent`, either `timestamp` (ISO-8601 with `Z`, `+07:00` or `-05:00`, 30 %",
        "with milliseconds) or `time_stamp` (epoch seconds, integer), `local_time`,",
        "`collection` (`view_product_detail`), and sometimes fields the pipeline does not",
        "know (`option`, `cart_id`, `current_url`, `resolution`, `api_version`). About 2 %",
        "of events come from private IPs (country unknown). Bad records mixed in:",
        "",
        *_kind_table(pv, _VIEW_KIND_DOC),
        *_expected_rows(pv),
        "",
        "## web_events.jsonl",
        "",
        f"{we['lines']} lines of JSON web events (seed 2), shaped like seed 002, over",
        "2024-03-01 .. 2024-03-02 UTC: `ip`, `host` (a few in upper case), `url` (a path, some",
        "with a query string), `referrer` (absent, `\"\"`, `\"-\"` or a URL), `user_agent`",
        "(about 10 % crawlers from their operators' ranges), `event_time` (ISO-8601 with `Z`,",
        "`+02:00` or `-05:00`, some with milliseconds) and sometimes a `headers` object. Hits",
        "come in visits, a few seconds to about a minute apart (some exactly 60 s: a new",
        "session); one visit crosses midnight. Bad records mixed in:",
        "",
        *_kind_table(we, _WEB_KIND_DOC),
        *_expected_rows(we),
        "",
        "## api_ticks.jsonl",
        "",
        f"{ticks['lines']} lines of polled Binance 24h-ticker responses (seed 3, seed 003's source):",
        f"{ticks['polls']} polls 30 minutes apart from 2024-03-01 00:00 UTC, three symbols each",
        "(BTCUSDT, ETHUSDT, SOLUSDT; `lastPrice` a string, `closeTime` epoch ms), mostly the whole",
        "list on one line, every eighth poll one object per line. One response is polled twice",
        f"(its {ticks['repeated_ticks']} ticks are duplicates), and {ticks['bad_records']} records are bad: an API error",
        "payload `{\"code\":-1121,\"msg\":\"Invalid symbol.\"}`, an HTML 502 page and a",
        "`lastPrice` of `\"n/a\"`: quarantine.",
        "",
        "## ip_events.jsonl",
        "",
        f"{ips['lines']} lines of IP sightings (seed 0, seed 000's collector) as `lakehouse serve`",
        f"lands them: {ips['sightings']} sightings from {ips['requests']} requests of 1-5 IPs over",
        f"2024-03-01 UTC, {ips['distinct_ips']} distinct public IPs (a few come back often). {ips['bad_records']} records",
        "another producer got wrong: a host name instead of an IP, no `received_at`, JSON cut",
        "short: quarantine.",
        "",
        "`tests/reference_gold.py` (access logs, product views) and `tests/reference_web.py`",
        "(web events) compute the expected silver counts and gold tables of these files",
        "independently of Spark.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# CLI


def _print_counts(counts: dict, path: Path, seconds: float | None = None) -> None:
    size = path.stat().st_size
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(f"wrote {path} ({size / 1e6:.1f} MB){took}")
    for key, value in counts.items():
        print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_dev.samples", description="Write realistic synthetic input data."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # command: (help, count flag, writer, default seed, default days, --no-bad help)
    writers = {
        "access": ("Apache access log lines", "--lines", write_access_log, 7, 3, "only valid, unique lines"),
        "product-views": ("product-view JSON lines", "--events", write_product_views, 11, 3, "only valid, unique records"),
        "web-events": ("web-event JSON lines (seed 002)", "--events", write_web_events, 2, 2, "only valid records"),
    }  # fmt: skip
    for name, (help_, count_flag, _, seed, days, no_bad) in writers.items():
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument(count_flag, dest="count", metavar="N", type=int, required=True)
        cmd.add_argument("--out", type=Path, required=True)
        if name == "access":
            cmd.add_argument("--format", choices=sorted(LOG_FORMATS), default="combined")
        cmd.add_argument("--seed", type=int, default=seed)
        cmd.add_argument("--start", default="2024-03-01", help="first UTC day (YYYY-MM-DD)")
        cmd.add_argument("--days", type=int, default=days)
        cmd.add_argument("--no-bad", action="store_true", help=no_bad)
    com = sub.add_parser("committed", help="regenerate the committed sample_logs/ files")
    com.add_argument("--out-dir", type=Path, default=Path("sample_logs"))
    args = parser.parse_args(argv)

    began = time.perf_counter()
    if args.command in writers:
        bad = {"log_format": args.format, "bad_lines": not args.no_bad} if args.command == "access" else {"bad_records": not args.no_bad}
        writer = writers[args.command][2]
        counts = writer(args.out, args.count, seed=args.seed, start=args.start, days=args.days, **bad)
        _print_counts(counts, args.out, time.perf_counter() - began)
    else:
        for name, counts in write_committed_samples(args.out_dir).items():
            _print_counts(counts, args.out_dir / name)
        print(f"wrote {args.out_dir / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
