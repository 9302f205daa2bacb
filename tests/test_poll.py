"""`lakehouse poll` against a local HTTP server: what lands, retries and their timing, restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lakehouse.io.http_poll import (
    Fetcher,
    HttpSettings,
    LandingFolder,
    PollRetry,
    check_url,
    load_state,
)
from lakehouse.jobs import poll
from lakehouse.jobs.poll import Fields, TickFilter, run_poll, time_ms

FIELDS = Fields("symbol", "closeTime")
# 2024-03-01 23:59:00 UTC in epoch ms.
T0 = 1709337540000
HTML = b"<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n<body>nope</body>\n</html>\n"
API_ERROR = b'{"code":-1121,"msg":"Invalid symbol."}'


def ticker(symbol: str, price: str, close_time: int) -> dict:
    return {"symbol": symbol, "lastPrice": price, "closeTime": close_time, "volume": "12.5"}


def body(doc) -> bytes:
    return json.dumps(doc).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (past the read timeout: a slow response)


class ScriptedServer:
    """A local HTTP server answering each request with the next `Reply` of its script
    (503 once the script is used up), or with what `script` returns when it is a function
    (called under the server's lock), on a port the OS picks; it notes when each came."""

    def __init__(self, script: list[Reply] | Callable[[], Reply]):
        self.script = script if callable(script) else list(script)
        self.requests: list[float] = []
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                with lock:
                    server.requests.append(time.monotonic())
                    if callable(server.script):
                        reply = server.script()
                    else:
                        reply = server.script.pop(0) if server.script else Reply(503, b"script used up")
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in {
                        "Content-Type": "application/json",
                        **reply.headers,
                    }.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout) before the answer

            def log_message(self, *_args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = (
            f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v3/ticker/24hr?symbol=BTCUSDT"
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def fetcher(url: str, retries: int = 3, read_timeout: float = 0.5, backoff: float = 0.1) -> Fetcher:
    return Fetcher(
        url,
        HttpSettings(
            connect_timeout=1.0,
            read_timeout=read_timeout,
            max_retries=retries,
            backoff_seconds=backoff,
        ),
    )


def landed(folder: Path) -> list[str]:
    """Every line under `folder` that the ingest would read (hidden names skipped), in file order."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )
    lines = []
    for path in files:
        data = path.read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == 1, f"{path}: not one whole line"
        lines.append(data.decode().rstrip("\n"))
    return lines


def poll_into(folder: Path, url: str, polls: int, state: Path | None = None, **kw):
    state = state or folder / "_poll_state.json"
    ticks = TickFilter(FIELDS, load_state(state))
    return run_poll(fetcher(url, **kw), ticks, LandingFolder(folder), 0, polls, state)


def test_polls_land_each_tick_once_and_every_error_answer_as_one_line(tmp_path):
    btc1, btc2, eth2, btc3 = (
        ticker("BTCUSDT", "100.50", T0),
        ticker("BTCUSDT", "101.00", T0 + 30000),
        ticker("ETHUSDT", "50.25", T0 + 30000),
        ticker("BTCUSDT", "abc", T0 + 60000),
    )
    script = [
        Reply(200, body(btc1)),  # poll 1
        Reply(200, body(btc1)),  # poll 2: the same tick again: nothing lands
        Reply(
            429, b'{"code":-1003,"msg":"Too many requests"}', {"Retry-After": "1"}
        ),  # poll 3, retried after 1 s
        Reply(200, body([btc2, eth2])),
        Reply(404, HTML, {"Content-Type": "text/html"}),  # poll 4: not retried, lands as one line
        Reply(400, API_ERROR),  # poll 5: Binance's answer to a bad symbol
        Reply(200, body(btc1), delay=1.5),  # poll 6: past the read timeout, retried
        Reply(200, body([btc2, btc3])),  # btc2 was sent by poll 3: only btc3 lands
    ]
    folder = tmp_path / "landing"
    with ScriptedServer(script) as server:
        stats = poll_into(folder, server.url, 6)
    assert landed(folder) == [
        body(btc1).decode(),
        body([btc2, eth2]).decode(),
        HTML.decode().replace("\n", " "),
        API_ERROR.decode(),
        json.dumps([btc3], separators=(",", ":")),
    ]
    assert (
        stats.polls,
        stats.ok,
        stats.failed,
        stats.records,
        stats.new_ticks,
        stats.repeated_ticks,
    ) == (6, 4, 2, 5, 4, 2)
    assert load_state(folder / "_poll_state.json") == {"BTCUSDT": T0 + 60000, "ETHUSDT": T0 + 30000}
    # Retry timing, lower bounds only (the machine may be slow, never fast):
    # the 429's Retry-After: 1 s; the slow answer: the 0.5 s read timeout, then the first backoff (0.1 s).
    times = server.requests
    assert len(times) == 8
    assert times[3] - times[2] >= 1.0
    assert times[7] - times[6] >= 0.5 + 0.1
    assert stats.durations[2] >= 1.0 and stats.durations[5] >= 0.6


def test_a_restart_reads_the_state_file_and_sends_nothing_old(tmp_path):
    folder = tmp_path / "landing"
    with ScriptedServer(
        [Reply(200, body([ticker("BTCUSDT", "1", T0), ticker("ETHUSDT", "2", T0)]))]
    ) as server:
        poll_into(folder, server.url, 1)
    # A new process: BTC at T0 again and an older ETH tick are old; BTC one second later is new.
    again = [
        ticker("BTCUSDT", "1", T0),
        ticker("ETHUSDT", "2", T0 - 1000),
        ticker("BTCUSDT", "3", T0 + 1000),
    ]
    with ScriptedServer([Reply(200, body(again)), Reply(200, body(again))]) as server:
        stats = poll_into(folder, server.url, 2)
    assert landed(folder)[1:] == [
        json.dumps([ticker("BTCUSDT", "3", T0 + 1000)], separators=(",", ":"))
    ]
    assert (stats.records, stats.new_ticks, stats.repeated_ticks, stats.ok) == (1, 1, 5, 2)


def test_backoff_grows_exponentially_from_the_first_retry():
    retry = PollRetry(total=5, backoff_factor=0.5, backoff_jitter=0.5, backoff_max=3)
    assert retry.get_backoff_time() == 0
    waits = []
    for _ in range(4):
        retry = retry.increment(method="GET", url="/", error=OSError("refused"))
        waits.append(retry.get_backoff_time())
    for wait, base in zip(waits, (0.5, 1.0, 2.0, 3.0), strict=True):
        assert base <= wait <= min(base + 0.5, 3.0)


def test_retry_after_as_an_http_date_is_honoured(tmp_path):
    # The date has whole seconds: 2-3 s ahead. The retry may not come before it, whatever
    # the machine's load did to the first request's timing (the instant compared, not a gap).
    due = int(time.time()) + 3
    due_monotonic = time.monotonic() + (due - time.time())
    later = datetime.fromtimestamp(due, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    script = [
        Reply(503, b"busy", {"Retry-After": later}),
        Reply(200, body(ticker("BTCUSDT", "1", T0))),
    ]
    with ScriptedServer(script) as server:
        answer = fetcher(server.url).fetch()
    assert (answer.status, answer.attempts) == (200, 2)
    assert server.requests[0] < due_monotonic <= server.requests[1] + 0.05


def test_every_poll_failing_exits_1_and_the_last_error_page_lands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_POLL__MAX_RETRIES", "1")
    folder = tmp_path / "landing"
    page = b"<html><title>500 Internal Server Error</title></html>"
    with ScriptedServer([Reply(500, page)] * 4) as server:
        code = poll.main(
            [
                "--url",
                server.url,
                "--to",
                "landing",
                "--landing",
                str(folder),
                "--interval",
                "0",
                "--max-polls",
                "2",
            ]
        )
    # 2 polls x (1 try + 1 retry); what each poll finally got lands for silver to quarantine.
    assert code == 1
    assert len(server.requests) == 4
    assert landed(folder) == [page.decode()] * 2
    assert "2 poll(s), 0 with ticks, 2 failed" in capsys.readouterr().out


def test_an_empty_answer_is_a_failed_poll_that_sends_nothing(tmp_path):
    folder = tmp_path / "landing"
    with ScriptedServer([Reply(200, b""), Reply(502, b" \r\n")]) as server:
        stats = poll_into(folder, server.url, 2, retries=0)
    assert (stats.polls, stats.failed, stats.records) == (2, 2, 0)
    assert not folder.exists()


def test_no_server_at_all_fails_every_poll_with_no_file(tmp_path):
    with ScriptedServer([]) as server:
        url = server.url
    folder = tmp_path / "landing"
    stats = poll_into(folder, url, 2, retries=1, backoff=0.05)
    assert (stats.polls, stats.failed, stats.records) == (2, 2, 0)
    assert not folder.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "not an http(s) URL: 'ftp://example.com/x' (scheme ftp)"),
        (
            "api.binance.com/api/v3/ticker",
            "not an http(s) URL: 'api.binance.com/api/v3/ticker' (scheme missing)",
        ),
        ("http:///path", "no host in URL 'http:///path'"),
    ],
)
def test_a_bad_url_is_a_clear_error(url, message, capsys):
    assert poll.main(["--url", url, "--to", "landing", "--max-polls", "1"]) == 2
    assert capsys.readouterr().err == f"lakehouse poll: {message}\n"
    with pytest.raises(ValueError, match="http"):
        check_url(url)


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (T0, T0),
        (str(T0), T0),
        (1709337540, T0),
        (1709337540.5, T0 + 500),
        ("2024-03-01T23:59:00Z", T0),
        ("2024-03-02T00:59:00+01:00", T0),
        ("2024-03-01 23:59:00", T0),
        ("soon", None),
        (True, None),
        (None, None),
        ({}, None),
    ],
)
def test_tick_times_in_every_form_are_epoch_ms(value, ms):
    assert time_ms(value) == ms


def test_default_sink_follows_the_profile(config, tmp_path):
    from lakehouse.config import load_config

    local = poll.setup(config, landing=str(tmp_path))
    assert (local.sink, local.state_path) == ("landing", tmp_path / "_poll_state.json")
    services = poll.setup(load_config("services", environ={}), landing=str(tmp_path))
    assert (services.sink, services.state_path) == (
        "kafka",
        tmp_path / "_poll_state.kafka.api_ticks.json",
    )
