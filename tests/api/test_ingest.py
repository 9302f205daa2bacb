"""The IP collector's routes over real HTTP: what is accepted, what is refused and why, and
what lands in the landing folder (read back line by line)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from lakehouse.api.app import create_app
from lakehouse.io.ip_sink import KafkaSink, LandingSink
from tests.api.conftest import running, with_api_key
from tests.conftest import free_ports

KEY = "ingest-key-of-at-least-32-characters"
RECEIVED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def ingest_config(config, **api):
    """`config` with the ingest bounds of `api` (by default a rate limit no test reaches)."""
    bounds = {"ingest_rate_per_second": 100_000.0, "ingest_burst": 100_000} | api
    return replace(config, api=replace(config.api, **bounds))


def landed(folder: Path) -> list[dict]:
    """Every record of the landing folder's data files (hidden names are not data)."""
    lines = []
    for path in sorted(folder.rglob("*.jsonl")):
        if not path.name.startswith("."):
            lines += path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.name.startswith(".")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ip-landing")


@pytest.fixture(scope="module")
def client(sqlite_config, folder):
    """The app with small bounds (5 IPs, 1 KiB bodies) on a landing folder of this module."""
    cfg = ingest_config(sqlite_config, ingest_max_ips=5, ingest_max_body_bytes=1024)
    # A file per write (no time slice): each answer's records are visible at once.
    app = create_app(cfg, sink=LandingSink(folder, roll_seconds=0))
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


@pytest.fixture
def fresh(folder):
    """The landing records written by the test only."""
    before = {p for p in folder.rglob("*.jsonl")}

    def new_records() -> list[dict]:
        lines = []
        for path in sorted(set(folder.rglob("*.jsonl")) - before):
            if not path.name.startswith("."):
                lines += path.read_text().splitlines()
        return [json.loads(line) for line in lines]

    return new_records


def test_one_ip_is_accepted_and_lands_as_one_json_line(client, fresh):
    before = datetime.now(UTC)
    response = client.post("/ingest-ip", json={"ip": "8.8.8.8"})
    after = datetime.now(UTC)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": []}
    [record] = fresh()
    assert set(record) == {"ip", "received_at", "request_id"}
    assert record["ip"] == "8.8.8.8"
    assert record["request_id"] == response.headers["X-Request-ID"]
    assert RECEIVED_AT.fullmatch(record["received_at"])
    assert before <= datetime.fromisoformat(record["received_at"]) <= after


def test_ips_are_stored_in_canonical_form(client, fresh):
    response = client.post(
        "/ingest-ips", json={"ips": ["2001:DB8:0:0::1", "::FFFF:1.2.3.4", "1.1.1.1", "::1"]}
    )
    assert response.json() == {"accepted": 4, "rejected": []}
    records = fresh()
    assert [r["ip"] for r in records] == ["2001:db8::1", "1.2.3.4", "1.1.1.1", "::1"]
    # One request: one request id and one reception time for all its IPs.
    assert {r["request_id"] for r in records} == {response.headers["X-Request-ID"]}
    assert len({r["received_at"] for r in records}) == 1


BAD_IPS = [
    ("not-an-ip!", "not an IPv4 or IPv6 address"),
    ("256.1.1.1", "not an IPv4 or IPv6 address"),
    ("1.2.3", "not an IPv4 or IPv6 address"),
    ("example.com", "a host name, not an IP address: resolve it and send the address"),
    ("localhost", "a host name, not an IP address: resolve it and send the address"),
    (
        "fe80::1%eth0",
        "IPv6 zone ids (`%` and an interface) are not accepted: send the address alone",
    ),
    (" 8.8.8.8", "surrounding whitespace: send the address alone"),
    ("8.8.8.8\n", "surrounding whitespace: send the address alone"),
    (
        "010.0.0.1",
        "IPv4 octets with leading zeros are ambiguous (octal or decimal?): write 10.0.0.1",
    ),
    ("", "empty string, not an IP address"),
    ("0.0.0.0", "0.0.0.0 is the unspecified address, not a client's"),
    ("::", ":: is the unspecified address, not a client's"),
    ("::ffff:0.0.0.0", "0.0.0.0 is the unspecified address, not a client's"),
    ("224.0.0.1", "224.0.0.1 is a multicast address, not a client's"),
    ("ff02::1", "ff02::1 is a multicast address, not a client's"),
    ("255.255.255.255", "255.255.255.255 is the broadcast address, not a client's"),
    (8, "expected an IP address as a string, got a number"),
    (None, "expected an IP address as a string, got null"),
    (["8.8.8.8"], "expected an IP address as a string, got a list"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_IPS)
def test_a_bad_ip_is_a_422_with_its_reason_and_nothing_lands(client, fresh, value, reason):
    response = client.post("/ingest-ip", json={"ip": value})
    assert response.status_code == 422
    assert response.json() == {"detail": f"ip {json.dumps(value)}: {reason}"}
    assert fresh() == []


def test_a_list_keeps_its_valid_ips_and_names_each_rejected_one(client, fresh):
    ips = ["8.8.8.8", "example.com", "fe80::1%eth0", "1.1.1.1", None]
    response = client.post("/ingest-ips", json={"ips": ips})
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 2,
        "rejected": [
            {
                "ip": "example.com",
                "reason": "a host name, not an IP address: resolve it and send the address",
            },
            {
                "ip": "fe80::1%eth0",
                "reason": "IPv6 zone ids (`%` and an interface) are not accepted: send the address alone",
            },
            {"ip": None, "reason": "expected an IP address as a string, got null"},
        ],
    }
    assert [r["ip"] for r in fresh()] == ["8.8.8.8", "1.1.1.1"]


def test_the_same_ip_twice_in_a_list_is_two_events(client, fresh):
    assert client.post("/ingest-ips", json={"ips": ["9.9.9.9", "9.9.9.9"]}).json() == {
        "accepted": 2,
        "rejected": [],
    }
    assert [r["ip"] for r in fresh()] == ["9.9.9.9", "9.9.9.9"]


def test_a_list_without_a_valid_ip_is_a_422(client, fresh):
    response = client.post("/ingest-ips", json={"ips": ["nope", "010.1.1.1"]})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "no valid IP in `ips`",
        "accepted": 0,
        "rejected": [
            {
                "ip": "nope",
                "reason": "a host name, not an IP address: resolve it and send the address",
            },
            {
                "ip": "010.1.1.1",
                "reason": "IPv4 octets with leading zeros are ambiguous (octal or decimal?): write 10.1.1.1",
            },
        ],
    }
    assert fresh() == []


SHAPES = [
    ("/ingest-ip", {}, 'missing field `ip`: expected a JSON object like {"ip": "8.8.8.8"}'),
    (
        "/ingest-ip",
        {"ips": ["8.8.8.8"]},
        'missing field `ip`: expected a JSON object like {"ip": "8.8.8.8"}',
    ),
    (
        "/ingest-ip",
        {"ip": "8.8.8.8", "source": "x", "at": 1},
        'unknown field(s) `at`, `source`: expected only `ip`, like {"ip": "8.8.8.8"}',
    ),
    ("/ingest-ip", ["8.8.8.8"], 'expected a JSON object like {"ip": "8.8.8.8"}, got a list'),
    ("/ingest-ip", "8.8.8.8", 'expected a JSON object like {"ip": "8.8.8.8"}, got a string'),
    (
        "/ingest-ips",
        {},
        'missing field `ips`: expected a JSON object like {"ips": ["8.8.8.8", "1.1.1.1"]}',
    ),
    ("/ingest-ips", {"ips": "8.8.8.8"}, "`ips` must be a list of IP strings, got a string"),
    ("/ingest-ips", {"ips": []}, "`ips` is empty: send at least one IP"),
    (
        "/ingest-ips",
        {"ips": [f"10.0.0.{n}" for n in range(6)]},
        "too many IPs: 6 in one request, at most 5 (api.ingest_max_ips)",
    ),
]


@pytest.mark.parametrize(("route", "body", "detail"), SHAPES)
def test_a_body_of_the_wrong_shape_is_a_422(client, fresh, route, body, detail):
    response = client.post(route, json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}
    assert fresh() == []


def test_the_most_ips_allowed_are_accepted(client, fresh):
    ips = [f"10.0.0.{n}" for n in range(5)]
    assert client.post("/ingest-ips", json={"ips": ips}).json() == {"accepted": 5, "rejected": []}
    assert [r["ip"] for r in fresh()] == ips


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            b"{'ip': '8.8.8.8'}",
            "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            b'{"ip": "8.8.8.8"',
            "body is not valid JSON: Expecting ',' delimiter: line 1 column 17 (char 16)",
        ),
        (b"\xff\xfe\x00garbage", None),
        (b"[" * 1000, "body is not usable JSON: nested too deeply"),
    ],
)
def test_a_body_that_is_not_json_is_a_400(client, fresh, body, detail):
    response = client.post("/ingest-ip", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    if detail:
        assert response.json() == {"detail": detail}
    else:
        assert response.json()["detail"].startswith("body is not valid JSON: ")
    assert fresh() == []


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        ("text/plain", "send the body as application/json, got text/plain"),
        (
            "application/x-www-form-urlencoded",
            "send the body as application/json, got application/x-www-form-urlencoded",
        ),
        (None, "send the body as application/json, got no Content-Type"),
    ],
)
def test_a_body_that_is_not_sent_as_json_is_a_415(client, fresh, content_type, detail):
    headers = {"Content-Type": content_type} if content_type else {}
    for route in ("/ingest-ip", "/ingest-ips"):
        response = client.post(route, content=b'{"ip": "8.8.8.8"}', headers=headers)
        assert response.status_code == 415
        assert response.json() == {"detail": detail}
    assert fresh() == []


def test_a_json_content_type_with_parameters_is_json(client, fresh):
    response = client.post(
        "/ingest-ip",
        content=b'{"ip": "8.8.4.4"}',
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 202
    assert [r["ip"] for r in fresh()] == ["8.8.4.4"]


def padded(ip: str, size: int) -> bytes:
    """A JSON body for `ip` of exactly `size` bytes (whitespace is padding JSON ignores)."""
    body = json.dumps({"ip": ip}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_body_up_to_the_limit_is_read_and_one_byte_more_is_a_413(client, fresh):
    at_limit = client.post(
        "/ingest-ip", content=padded("4.4.4.4", 1024), headers={"Content-Type": "application/json"}
    )
    assert at_limit.status_code == 202
    over = client.post(
        "/ingest-ip", content=padded("4.4.4.4", 1025), headers={"Content-Type": "application/json"}
    )
    assert over.status_code == 413
    assert over.json() == {"detail": "request body over 1024 bytes (api.ingest_max_body_bytes)"}
    assert [r["ip"] for r in fresh()] == ["4.4.4.4"]


def test_a_chunked_body_without_a_length_is_counted_as_it_arrives(client, fresh):
    def chunks():
        yield b'{"ips": ["5.5.5.5"' + b" " * 600
        yield b" " * 600 + b"]}"

    response = client.post(
        "/ingest-ips", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # sent chunked: no length to trust
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 1024 bytes (api.ingest_max_body_bytes)"}
    assert fresh() == []


def test_the_routes_are_declared_in_the_openapi_schema(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/ingest-ips"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["required"] == ["ips"] and body["properties"]["ips"]["type"] == "array"
    assert set(spec["paths"]["/ingest-ip"]["post"]["responses"]) >= {
        "202",
        "400",
        "413",
        "415",
        "422",
        "429",
        "503",
    }


def test_with_an_api_key_the_ingest_routes_need_it(sqlite_config, tmp_path):
    cfg = with_api_key(ingest_config(sqlite_config), KEY)
    with (
        running(create_app(cfg, sink=LandingSink(tmp_path))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        for route, body in (
            ("/ingest-ip", {"ip": "8.8.8.8"}),
            ("/ingest-ips", {"ips": ["8.8.8.8"]}),
        ):
            missing = http.post(route, json=body)
            assert (missing.status_code, missing.json()) == (
                401,
                {"detail": "missing X-API-Key header"},
            )
            wrong = http.post(route, json=body, headers={"X-API-Key": "nope"})
            assert (wrong.status_code, wrong.json()) == (401, {"detail": "wrong API key"})
            ok = http.post(route, json=body, headers={"X-API-Key": KEY})
            assert (ok.status_code, ok.json()) == (202, {"accepted": 1, "rejected": []})
    assert [r["ip"] for r in landed(tmp_path)] == ["8.8.8.8", "8.8.8.8"]


def test_over_the_rate_a_client_gets_429_and_retry_after_then_is_accepted_again(
    sqlite_config, tmp_path
):
    cfg = ingest_config(sqlite_config, ingest_rate_per_second=1.0, ingest_burst=2)
    with (
        running(create_app(cfg, sink=LandingSink(tmp_path))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        assert [http.post("/ingest-ip", json={"ip": f"7.7.7.{n}"}).status_code for n in (1, 2)] == [
            202,
            202,
        ]
        limited = http.post("/ingest-ip", json={"ip": "7.7.7.3"})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert limited.json() == {
            "detail": "too many requests: at most 1/s with bursts of 2; retry in 1 s"
        }
        # Refused requests spend nothing: a client that waits as told is served.
        time.sleep(int(limited.headers["Retry-After"]))
        again = http.post("/ingest-ip", json={"ip": "7.7.7.3"})
        assert again.status_code == 202
        # Analytics and health are not rate limited by the ingest bucket.
        assert http.get("/health").status_code == 200
    assert sorted(r["ip"] for r in landed(tmp_path)) == ["7.7.7.1", "7.7.7.2", "7.7.7.3"]


def test_a_landing_folder_that_cannot_be_written_is_a_503_with_the_reason(sqlite_config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with running(
        create_app(ingest_config(sqlite_config), sink=LandingSink(blocker / "landing"))
    ) as url:
        response = httpx.post(f"{url}/ingest-ips", json={"ips": ["8.8.8.8", "bad"]}, timeout=10)
    assert response.status_code == 503
    assert response.json() == {
        "detail": f"IPs not stored, retry later: cannot write to landing folder {blocker / 'landing'}: Not a directory"
    }


def test_a_kafka_broker_that_does_not_answer_is_a_503_within_the_delivery_timeout(sqlite_config):
    sink = KafkaSink(f"127.0.0.1:{free_ports()[0]}", "ip_events", delivery_timeout=1.0)
    with running(create_app(ingest_config(sqlite_config), sink=sink)) as url:
        started = time.monotonic()
        response = httpx.post(f"{url}/ingest-ip", json={"ip": "8.8.8.8"}, timeout=30)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "IPs not stored, retry later: Kafka did not acknowledge the records on ip_events: "
    )
    assert elapsed < 5


def test_accepted_and_rejected_ips_are_counted_in_the_metrics(sqlite_config, tmp_path):
    from tests.api.test_metrics import samples, value

    cfg = ingest_config(sqlite_config, ingest_max_ips=3)
    with (
        running(create_app(cfg, sink=LandingSink(tmp_path))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        http.post("/ingest-ip", json={"ip": "8.8.8.8"})
        http.post("/ingest-ip", json={"ip": "example.com"})
        http.post("/ingest-ips", json={"ips": ["1.1.1.1", "2.2.2.2", "010.0.0.1"]})
        http.post("/ingest-ips", json={"ips": ["1.1.1.1"] * 4})
        http.post("/ingest-ips", content=b"nope", headers={"Content-Type": "application/json"})
        http.post("/ingest-ips", content=b"{}", headers={"Content-Type": "text/plain"})
        scrape = samples(http.get("/metrics").text)

    def count(name, **labels):
        return value(scrape, f"lakehouse_ingest_{name}_total", **labels)

    assert count("ips_accepted", route="/ingest-ip") == 1
    assert count("ips_accepted", route="/ingest-ips") == 2
    assert count("ips_rejected", route="/ingest-ip", reason="hostname") == 1
    assert count("ips_rejected", route="/ingest-ips", reason="leading_zeros") == 1
    assert count("ips_rejected", route="/ingest-ips", reason="too_many") == 4
    assert count("requests_refused", route="/ingest-ips", reason="not_json") == 1
    assert count("requests_refused", route="/ingest-ips", reason="content_type") == 1
    statuses = {
        s: value(
            scrape, "lakehouse_api_requests_total", method="POST", route="/ingest-ips", status=s
        )
        for s in ("2xx", "4xx")
    }
    assert statuses == {"2xx": 1, "4xx": 3}
    assert len(landed(tmp_path)) == 3
