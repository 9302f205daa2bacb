"""`lakehouse report --html` end to end: a small warehouse, the page, a real headless Chromium.

The warehouse is built once for the module by the batch job from a few inline lines; the
page is opened from disk in Debian's `chromium` (driven by its `chromedriver`). The
expected numbers are counted here from the same inline records in plain Python, never
read back from gold or from the report's own code.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse.jobs import batch, report

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHART_KEYS = {
    "traffic", "status", "endpoints", "referrers", "countries", "browsers", "os", "devices",
    "bots", "products", "quarantine",
}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Mobile Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@dataclass(frozen=True)
class Hit:
    day: str
    time: str
    ip: str
    path: str
    status: int
    referrer: str = "-"
    agent: str = FIREFOX

    @property
    def is_bot(self) -> bool:
        return self.agent == GOOGLEBOT

    @property
    def endpoint(self) -> str:
        return self.path.split("?")[0]

    def line(self) -> str:
        day = {"2024-03-01": "01/Mar/2024", "2024-03-02": "02/Mar/2024", "2024-03-03": "03/Mar/2024"}[self.day]
        return (f'{self.ip} - - [{day}:{self.time} +0000] "GET {self.path} HTTP/1.1" {self.status} 512 '
                f'"{self.referrer}" "{self.agent}"')


GOOGLE = "https://www.google.com/search?q=rings"
HITS = [
    Hit("2024-03-01", "08:00:00", "81.2.69.142", "/products/1", 200, GOOGLE),
    Hit("2024-03-01", "08:00:01", "81.2.69.142", "/products/1", 200, GOOGLE),
    Hit("2024-03-01", "08:00:02", "81.2.69.142", "/products/1?color=red", 200),
    Hit("2024-03-01", "09:10:00", "81.2.69.142", "/products/1", 500, agent=ANDROID),
    Hit("2024-03-01", "09:11:00", "175.16.199.1", "/cart", 404, "https://news.ycombinator.com/item?id=1"),
    Hit("2024-03-01", "09:12:00", "175.16.199.1", "/cart", 404),
    Hit("2024-03-01", "10:00:00", "66.249.66.1", "/robots.txt", 200, agent=GOOGLEBOT),
    Hit("2024-03-02", "11:00:00", "89.160.20.112", "/products/2", 200, GOOGLE, ANDROID),
    Hit("2024-03-02", "11:00:05", "89.160.20.112", "/products/2", 200, GOOGLE, ANDROID),
    Hit("2024-03-02", "11:01:00", "81.2.69.142", "/products/1", 301),
    Hit("2024-03-02", "12:00:00", "66.249.66.1", "/robots.txt", 200, agent=GOOGLEBOT),
    Hit("2024-03-02", "12:00:01", "66.249.66.1", "/products/2", 503, agent=GOOGLEBOT),
    Hit("2024-03-03", "07:00:00", "175.16.199.1", "/", 200),
]
BROKEN_ACCESS_LINES = ['81.2.69.142 - - [01/Mar/2024:08:00:00 +0000] "GET /truncated HTTP/1.1" 2']
VIEWS = [  # (day, device, product)
    ("2024-03-01", "dev-a", "ring-1"),
    ("2024-03-01", "dev-a", "ring-1"),
    ("2024-03-01", "dev-b", "ring-1"),
    ("2024-03-01", "dev-b", "ring-2"),
    ("2024-03-02", "dev-c", "ring-1"),
    ("2024-03-03", "dev-c", "ring-3"),
]
BROKEN_VIEW_LINES = ['{"_id": "broken", "product_id": ']
DAYS = sorted({h.day for h in HITS})


def view_line(i: int, day: str, device: str, product: str) -> str:
    return json.dumps({
        "_id": f"view-{i}", "timestamp": f"{day}T10:{i:02d}:00Z", "remote_ip": "81.2.69.142",
        "user_agent": FIREFOX, "device_id": device, "store_id": "1", "product_id": product,
        "collection": "view_product_detail",
    })


def expected_days(hits: list[Hit]) -> dict[str, dict[str, float]]:
    """Per day: requests, unique visitors (IP, agent), bots, 4xx, 5xx, error rate."""
    out = {}
    for day in sorted({h.day for h in hits}):
        today = [h for h in hits if h.day == day]
        errors = sum(400 <= h.status < 600 for h in today)
        out[day] = {
            "requests": len(today),
            "unique_visitors": len({(h.ip, h.agent) for h in today}),
            "unique_ips": len({h.ip for h in today}),
            "bot_requests": sum(h.is_bot for h in today),
            "status_2xx": sum(200 <= h.status < 300 for h in today),
            "status_3xx": sum(300 <= h.status < 400 for h in today),
            "status_4xx": sum(400 <= h.status < 500 for h in today),
            "status_5xx": sum(500 <= h.status < 600 for h in today),
            "error_rate": round(errors / len(today), 4),
        }
    return out


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("report_html")
    access = base / "access.log"
    access.write_text("\n".join([h.line() for h in HITS] + BROKEN_ACCESS_LINES) + "\n")
    views = base / "views.jsonl"
    views.write_text("\n".join([view_line(i, *v) for i, v in enumerate(VIEWS)] + BROKEN_VIEW_LINES) + "\n")
    wh = str(base / "warehouse")
    code = batch.main(["--profile", "local", "--warehouse", wh, "--access-logs", str(access),
                       "--product-views", str(views), "--no-export"])
    assert code == 0
    return wh


@pytest.fixture(scope="module")
def page(warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out") / "report.html"
    assert report.main(["--profile", "local", "--warehouse", warehouse, "--html", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") or Path(CHROMIUM).exists()):
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# Every table of the page as [table, [[row key, [[metric, shown text, data-value]...]]...]],
# in page order (lists: WebDriver does not keep the key order of objects), read with
# textContent so that folded (<details>) tables are read too.
READ_TABLES = """
return Array.from(document.querySelectorAll('[data-table]'), table => [
  table.dataset.table,
  Array.from(table.querySelectorAll('tr[data-key]'), tr => [
    tr.dataset.key,
    Array.from(tr.querySelectorAll('td[data-metric]'), td => [td.dataset.metric, td.textContent, td.dataset.value]),
  ]),
]);
"""


def open_page(browser, path: Path) -> dict:
    started = time.time()
    browser.get(path.as_uri())
    seconds = time.time() - started
    return {
        "seconds": seconds,
        "logs": browser.get_log("browser"),
        "tables": {
            table: {key: {metric: (text, value) for metric, text, value in cells} for key, cells in rows}
            for table, rows in browser.execute_script(READ_TABLES)
        },
    }


@pytest.fixture(scope="module")
def opened(browser, page):
    return open_page(browser, page)


@pytest.fixture
def showing(browser, page, opened):
    """The browser on the module's page: a test that opened another page (the date range)
    may have run before, in any order."""
    if browser.current_url != page.as_uri():
        browser.get(page.as_uri())
    return browser


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_page_loads_without_console_errors_or_requests(showing, opened):
    severe = [entry for entry in opened["logs"] if entry["level"] == "SEVERE"]
    assert severe == []
    # Offline by construction: nothing but the page itself is fetched.
    assert showing.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert opened["seconds"] < 10, f"page took {opened['seconds']:.1f}s to load"


def test_every_chart_renders_an_svg_with_pixels(showing, opened):
    from PIL import Image

    charts = showing.find_elements("css selector", ".chart")
    assert {c.get_attribute("data-chart") for c in charts} == CHART_KEYS
    assert len(charts) == len(CHART_KEYS)
    for chart in charts:
        size = showing.execute_script(
            "const r = arguments[0].querySelector('svg').getBoundingClientRect(); return [r.width, r.height];", chart
        )
        assert size[0] > 100 and size[1] > 50, (chart.get_attribute("data-chart"), size)
        showing.execute_script("arguments[0].scrollIntoView()", chart)
        shot = Image.open(io.BytesIO(chart.screenshot_as_png)).convert("RGB")
        colours = shot.getcolors(maxcolors=1 << 16) or []
        assert len(colours) > 8, f"chart {chart.get_attribute('data-chart')} looks blank"
    whole = Image.open(io.BytesIO(showing.get_screenshot_as_png())).convert("RGB")
    assert whole.getbbox() is not None and len(whole.getcolors(maxcolors=1 << 16) or []) > 16


def test_traffic_per_day_equals_the_input_lines(opened):
    traffic = opened["tables"]["traffic"]
    status = opened["tables"]["status"]
    expected = expected_days(HITS)
    assert sorted(traffic) == DAYS
    for day, want in expected.items():
        for metric in ("requests", "unique_visitors", "unique_ips", "bot_requests"):
            assert number(traffic[day][metric][0]) == want[metric], (day, metric)
        assert number(traffic[day]["human_requests"][0]) == want["requests"] - want["bot_requests"]
        assert float(traffic[day]["error_rate"][1]) == pytest.approx(want["error_rate"])
        assert traffic[day]["error_rate"][0] == f"{want['error_rate'] * 100:.2f}%"
        for metric in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
            assert number(status[day][metric][0]) == want[metric], (day, metric)


def test_top_endpoints_counts_and_error_rates_equal_the_input(opened):
    endpoints = opened["tables"]["endpoints"]
    requests = Counter(h.endpoint for h in HITS)
    assert {k: number(v["requests"][0]) for k, v in endpoints.items()} == dict(requests)
    for endpoint, row in endpoints.items():
        mine = [h for h in HITS if h.endpoint == endpoint]
        assert number(row["status_4xx"][0]) == sum(400 <= h.status < 500 for h in mine)
        assert number(row["status_5xx"][0]) == sum(h.status >= 500 for h in mine)
        rate = sum(h.status >= 400 for h in mine) / len(mine)
        assert float(row["error_rate"][1]) == pytest.approx(round(rate, 4))
    # Busiest first, in the page as in the table.
    shown = list(endpoints)
    assert shown[0] == requests.most_common(1)[0][0]


def test_bots_referrers_agents_and_countries_add_up_to_the_input(opened):
    tables = opened["tables"]
    bots = sum(h.is_bot for h in HITS)
    assert number(tables["bots"]["bots"]["requests"][0]) == bots
    assert number(tables["bots"]["humans"]["requests"][0]) == len(HITS) - bots
    assert tables["bots"]["bots"]["share"][0] == f"{round(bots / len(HITS), 4) * 100:.2f}%"
    hosts = Counter(h.referrer.split("/")[2] if h.referrer != "-" else "(direct)" for h in HITS)
    assert {k: number(v["requests"][0]) for k, v in tables["referrers"].items()} == dict(hosts)
    for key in ("browsers", "os", "devices", "countries"):
        assert sum(number(v["requests"][0]) for v in tables[key].values()) == len(HITS), key


def test_products_and_quarantine_equal_the_input(opened):
    products = opened["tables"]["products"]
    views = Counter(p for _d, _dev, p in VIEWS)
    visitor_days = Counter(p for _d, _dev, p in {(d, dev, p) for d, dev, p in VIEWS})
    assert {k: number(v["views"][0]) for k, v in products.items()} == dict(views)
    assert {k: number(v["visitor_days"][0]) for k, v in products.items()} == dict(visitor_days)
    quarantine = opened["tables"]["quarantine"]
    per_dataset = Counter()
    for row in quarantine.values():
        per_dataset[row["dataset"][0]] += number(row["rows"][0])
    assert per_dataset == {"access_logs": len(BROKEN_ACCESS_LINES), "product_views": len(BROKEN_VIEW_LINES)}


def test_header_names_the_warehouse_and_range(showing, warehouse):
    facts = {e.get_attribute("data-fact"): e.text for e in showing.find_elements("css selector", "[data-fact]")}
    assert facts["warehouse"] == warehouse
    assert facts["range"] == "all dates"
    assert facts["days"] == f"{DAYS[0]} to {DAYS[-1]}"


def test_date_range_keeps_only_its_days(warehouse, browser, tmp_path, capsys):
    out = tmp_path / "march-2.html"
    day = "2024-03-02"
    assert report.main(["--profile", "local", "--warehouse", warehouse, "--html", str(out),
                        "--from", day, "--to", day]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "KiB" in printed
    tables = open_page(browser, out)["tables"]
    mine = [h for h in HITS if h.day == day]
    assert list(tables["traffic"]) == [day]
    assert number(tables["traffic"][day]["requests"][0]) == len(mine)
    assert {k: number(v["requests"][0]) for k, v in tables["endpoints"].items()} == dict(
        Counter(h.endpoint for h in mine)
    )
    assert {k: number(v["views"][0]) for k, v in tables["products"].items()} == dict(
        Counter(p for d, _dev, p in VIEWS if d == day)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-13-01"], "is not a date"),
        (["--to", "yesterday"], "is not a date"),
        (["--from", "2024-03-02", "--to", "2024-03-01"], "--from 2024-03-02 is after --to 2024-03-01"),
        (["--top", "0"], "--top must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        report.main(["--warehouse", str(tmp_path), "--html", str(tmp_path / "r.html"), *args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
