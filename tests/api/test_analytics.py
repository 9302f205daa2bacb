"""The analytics routes over real HTTP, on SQLite and on a real PostgreSQL: exact sums of the
hand-written gold rows (tests/api/conftest.py), parameters validated, every query bound."""

from __future__ import annotations

import httpx
import pytest

from lakehouse.api.app import create_app
from tests.api.conftest import running


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def api(request):
    """Base URL of a running API over GOLD_ROWS, in SQLite or in PostgreSQL."""
    cfg = request.getfixturevalue(f"{request.param}_config")
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def rows(client: httpx.Client, route: str, **params) -> list[dict]:
    response = client.get(f"/analytics/{route}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_requests_per_endpoint_sums_the_days_most_requested_first(api):
    assert rows(api, "requests_per_endpoint") == [
        {"endpoint": "/home", "requests": 16, "status_2xx": 14, "status_3xx": 1, "status_4xx": 1, "status_5xx": 0,
         "bytes": 1600, "error_rate": 1 / 16},
        {"endpoint": "/api/cart", "requests": 13, "status_2xx": 6, "status_3xx": 0, "status_4xx": 2, "status_5xx": 5,
         "bytes": 1300, "error_rate": 7 / 13},
        {"endpoint": "/login", "requests": 3, "status_2xx": 0, "status_3xx": 0, "status_4xx": 3, "status_5xx": 0,
         "bytes": 30, "error_rate": 1.0},
    ]


def test_from_and_to_are_inclusive_and_limit_cuts(api):
    one_day = rows(api, "requests_per_endpoint", **{"from": "2024-03-02", "to": "2024-03-02"})
    assert [(r["endpoint"], r["requests"]) for r in one_day] == [("/api/cart", 8), ("/home", 6)]
    assert [r["endpoint"] for r in rows(api, "requests_per_endpoint", limit=1)] == ["/home"]
    assert [r["endpoint"] for r in rows(api, "requests_per_endpoint", **{"from": "2024-03-03"})] == ["/login"]
    assert rows(api, "requests_per_endpoint", **{"from": "2025-01-01"}) == []
    body = api.get("/analytics/requests_per_endpoint", params={"to": "2024-03-01", "limit": 5}).json()
    assert (body["from"], body["to"], body["limit"]) == (None, "2024-03-01", 5)


def test_top_ips_sums_the_daily_top_lists_ties_by_ip_and_says_which_sums_are_whole(api):
    # Two days have a top list: only 10.0.0.2 made both, the others' sums may lack a day.
    assert rows(api, "top_ips") == [
        {"ip": "10.0.0.2", "requests": 14, "days": 2, "exact": True},
        {"ip": "10.0.0.1", "requests": 7, "days": 1, "exact": False},
        {"ip": "10.0.0.3", "requests": 5, "days": 1, "exact": False},
        {"ip": "10.0.0.4", "requests": 1, "days": 1, "exact": False},
    ]
    first_day = rows(api, "top_ips", **{"from": "2024-03-01", "to": "2024-03-01", "limit": 2})
    assert first_day == [{"ip": "10.0.0.1", "requests": 7, "days": 1, "exact": True},
                         {"ip": "10.0.0.2", "requests": 5, "days": 1, "exact": True}]
    bound = api.get("/analytics/top_ips").json()["bound"]
    assert bound.startswith("summed from each day's top 100") and "missing" in bound


def test_error_rate_per_day_newest_first_and_over_the_window(api):
    body = api.get("/analytics/error_rate", params={"limit": 2}).json()
    assert body["days"] == [
        {"report_date": "2024-03-03", "requests": 3, "status_4xx": 3, "status_5xx": 0, "error_rate": 1.0},
        {"report_date": "2024-03-02", "requests": 14, "status_4xx": 0, "status_5xx": 4, "error_rate": 4 / 14},
    ]
    assert body["total"] == {"days": 3, "requests": 32, "status_4xx": 6, "status_5xx": 5, "error_rate": 11 / 32}
    empty = api.get("/analytics/error_rate", params={"from": "2030-01-01"}).json()
    assert empty["days"] == []
    assert empty["total"] == {"days": 0, "requests": 0, "status_4xx": 0, "status_5xx": 0, "error_rate": 0.0}


def test_top_products_with_their_last_view(api):
    assert rows(api, "top_products") == [
        {"product_id": "p1", "views": 9, "last_view_time": "2024-03-02T08:30:00"},
        {"product_id": "p2", "views": 6, "last_view_time": "2024-03-01T23:59:59.500000"},
    ]


def test_countries_by_views(api):
    assert rows(api, "countries") == [
        {"country": "US", "views": 7},
        {"country": "DE", "views": 5},
        {"country": "(unknown)", "views": 1},
    ]


def test_health_says_how_fresh_gold_is(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["gold"] == {"latest_report_date": "2024-03-03", "last_exported_at": "2024-03-04T02:30:00", "report_dates": 3}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2024-13-01"}, "from", "not a real date"),
        ({"from": "2024-02-30"}, "from", "not a real date"),
        ({"to": "yesterday"}, "to", "must be a date as YYYY-MM-DD"),
        ({"from": "1709251200"}, "from", "must be a date as YYYY-MM-DD"),
        ({"from": "2024-03-02", "to": "2024-03-01"}, "to", "is before `from`"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 1001}, "limit", "less than or equal to 1000"),
        ({"limit": "ten"}, "limit", "valid integer"),
    ],
)
def test_bad_parameters_are_a_422_naming_the_parameter(api, params, field, message):
    for route in ("requests_per_endpoint", "top_ips", "error_rate", "top_products", "countries"):
        response = api.get(f"/analytics/{route}", params=params)
        assert response.status_code == 422, (route, response.text)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["query", field]
        assert message in error["msg"]


def test_parameters_are_bound_not_spliced_into_the_sql(api):
    # A quote in a date would break (or rewrite) spliced SQL; here it is refused as a date
    # before any query, and the tables are intact afterwards.
    response = api.get("/analytics/top_ips", params={"from": "2024-03-01' OR '1'='1"})
    assert response.status_code == 422
    assert len(rows(api, "top_ips")) == 4


def test_openapi_documents_the_routes(api):
    spec = api.get("/openapi.json").json()
    assert {"/analytics/requests_per_endpoint", "/analytics/top_ips", "/analytics/error_rate",
            "/analytics/top_products", "/analytics/countries", "/health", "/metrics"} <= set(spec["paths"])
    params = {p["name"] for p in spec["paths"]["/analytics/top_ips"]["get"]["parameters"]}
    assert params == {"from", "to", "limit"}
    assert api.get("/docs").status_code == 200
