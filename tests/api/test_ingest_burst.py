"""Many clients at once: every accepted IP lands exactly once; the sink and the token bucket
on their own."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from lakehouse.api.app import create_app
from lakehouse.api.ingest import TokenBuckets, canonical_ip
from lakehouse.io.ip_sink import LandingSink
from tests.api.conftest import running
from tests.api.test_ingest import hidden_files, landed

REQUESTS, IPS_PER_REQUEST, CLIENTS = 50, 10, 16


def test_a_burst_of_concurrent_requests_loses_and_doubles_nothing(sqlite_config, tmp_path):
    # The configured defaults (50/s, bursts of 100): a burst of 50 requests is within them.
    assert (sqlite_config.api.ingest_rate_per_second, sqlite_config.api.ingest_burst) == (50, 100)
    sent = [[f"10.{r}.0.{i}" for i in range(IPS_PER_REQUEST)] for r in range(REQUESTS)]
    with running(create_app(sqlite_config, sink=LandingSink(tmp_path))) as url:
        limits = httpx.Limits(max_connections=CLIENTS)
        with (
            httpx.Client(base_url=url, timeout=30, limits=limits) as http,
            ThreadPoolExecutor(CLIENTS) as pool,
        ):
            answers = list(pool.map(lambda ips: http.post("/ingest-ips", json={"ips": ips}), sent))
    assert [a.status_code for a in answers] == [202] * REQUESTS
    assert all(a.json() == {"accepted": IPS_PER_REQUEST, "rejected": []} for a in answers)
    records = landed(tmp_path)
    assert len(records) == REQUESTS * IPS_PER_REQUEST
    assert sorted(r["ip"] for r in records) == sorted(ip for ips in sent for ip in ips)
    # Each request's IPs carry its own id, the one its answer gave.
    by_request = {a.headers["X-Request-ID"]: ips for a, ips in zip(answers, sent, strict=True)}
    assert len(by_request) == REQUESTS
    for request_id, ips in by_request.items():
        assert [r["ip"] for r in records if r["request_id"] == request_id] == ips
    assert hidden_files(tmp_path) == []  # no temporary file left behind
    # One time slice (a minute by default): one file, published when the app stopped.
    assert lines_per_file(tmp_path) == [REQUESTS * IPS_PER_REQUEST]


def lines_per_file(folder: Path) -> list[int]:
    return [len(f.read_text().splitlines()) for f in sorted(folder.rglob("ip-*.jsonl"))]


def test_a_landing_file_ends_after_max_records_and_a_request_is_never_split(tmp_path):
    sink = LandingSink(tmp_path, max_records_per_file=3)
    for n in range(5):
        sink.submit([{"ip": f"1.1.{n}.{i}"} for i in range(2)]).result(10)
    assert lines_per_file(tmp_path) == [4, 4]  # the fifth request's slice is still open (hidden)
    assert len(hidden_files(tmp_path)) == 1
    sink.close()
    assert sorted(lines_per_file(tmp_path)) == [2, 4, 4]
    assert sorted(r["ip"] for r in landed(tmp_path)) == sorted(
        f"1.1.{n}.{i}" for n in range(5) for i in range(2)
    )
    assert hidden_files(tmp_path) == []


def test_an_idle_slice_is_published_when_its_time_is_up(tmp_path):
    sink = LandingSink(tmp_path, roll_seconds=0.2)
    try:
        sink.submit([{"ip": "8.8.8.8"}]).result(10)
        deadline = time.monotonic() + 10
        while not landed(tmp_path):
            assert time.monotonic() < deadline, "the slice was not published"
            time.sleep(0.02)
        assert landed(tmp_path) == [{"ip": "8.8.8.8"}] and hidden_files(tmp_path) == []
    finally:
        sink.close()


def test_a_slice_left_by_a_dead_writer_is_published_without_its_torn_line(tmp_path):
    day = tmp_path / "2024-03-01"
    day.mkdir()
    orphan = day / ".ip-20240301T000000.000000Z-1-1.jsonl.open"
    orphan.write_bytes(b'{"ip":"1.1.1.1"}\n{"ip":"2.2.2.2"}\n{"ip":"3.3.')
    sink = LandingSink(tmp_path)
    sink.submit([{"ip": "4.4.4.4"}]).result(10)
    sink.close()
    assert (
        day / "ip-20240301T000000.000000Z-1-1.jsonl"
    ).read_text() == '{"ip":"1.1.1.1"}\n{"ip":"2.2.2.2"}\n'
    assert sorted(r["ip"] for r in landed(tmp_path)) == ["1.1.1.1", "2.2.2.2", "4.4.4.4"]
    assert hidden_files(tmp_path) == []


def test_a_live_writers_slice_is_not_taken_by_another_sink(tmp_path):
    first, second = LandingSink(tmp_path), LandingSink(tmp_path)
    first.submit([{"ip": "1.1.1.1"}]).result(10)
    second.submit([{"ip": "2.2.2.2"}]).result(
        10
    )  # its start looks for orphans: the first's is locked
    assert landed(tmp_path) == [] and len(hidden_files(tmp_path)) == 2
    first.close()
    second.close()
    assert sorted(r["ip"] for r in landed(tmp_path)) == ["1.1.1.1", "2.2.2.2"]
    assert lines_per_file(tmp_path) == [1, 1]


def test_a_closed_landing_sink_writes_what_was_queued_then_refuses(tmp_path):
    from lakehouse.io.ip_sink import SinkUnavailable

    sink = LandingSink(tmp_path)
    future = sink.submit(
        [{"ip": "8.8.8.8", "received_at": "2024-03-01T00:00:00.000000Z", "request_id": "r"}]
    )
    sink.close()
    assert future.done() and future.result() is None
    first_line = next(tmp_path.rglob("*.jsonl")).read_text()
    assert (
        first_line
        == '{"ip":"8.8.8.8","received_at":"2024-03-01T00:00:00.000000Z","request_id":"r"}\n'
    )
    assert json.loads(first_line)["ip"] == "8.8.8.8"
    with pytest.raises(SinkUnavailable, match="is closed"):
        sink.submit([{"ip": "1.1.1.1"}])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_client_has_its_own_bucket_refilled_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)  # the next token in 1/rate seconds
    assert buckets.take("b") == 0  # another client is not affected
    clock.now += 0.25
    assert buckets.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert buckets.take("a") == 0
    clock.now += 100  # refills up to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] == pytest.approx(0.5)


def test_full_buckets_are_forgotten_so_memory_stays_bounded():
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock, max_clients=10)
    for n in range(10):
        buckets.take(f"old-{n}")
    clock.now += 5  # all of them have refilled
    buckets.take("new")
    assert set(buckets._buckets) == {"new"}


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("2001:0DB8:0000::0001", "2001:db8::1"),
        ("10.0.0.10", "10.0.0.10"),
        ("::ffff:8.8.8.8", "8.8.8.8"),  # IPv4-mapped IPv6 is the IPv4 address: one visitor, one IP
        ("::FFFF:0808:0808", "8.8.8.8"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_canonical_ip(given, canonical):
    assert canonical_ip(given) == canonical
