"""User-agent and GeoIP classification per distinct value, on the executors, joined back.

Geo values are checked against the database read here directly with maxminddb.
"""

import maxminddb
import pytest

from lakehouse.io import geoip
from lakehouse.transforms.enrich import (
    classify_user_agent,
    classify_user_agents,
    locate_ips,
    user_agent_classifier,
    with_geo,
    with_user_agent,
)

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_classify_user_agent():
    assert classify_user_agent(CHROME) == ("Chrome", "Windows", "desktop", False)
    assert classify_user_agent(IPHONE) == ("Mobile Safari", "iOS", "mobile", False)
    assert classify_user_agent(GOOGLEBOT)[2:] == ("bot", True)


def test_user_agents_are_classified_on_the_executors_and_joined_back(spark):
    agents = spark.createDataFrame([(CHROME,), (IPHONE,)], "user_agent string")
    dim = classify_user_agents(agents, "v1")
    assert sorted((r.user_agent == CHROME, r.ua_device, r.classifier) for r in dim.collect()) == [
        (False, "mobile", "v1"),
        (True, "desktop", "v1"),
    ]
    rows = spark.createDataFrame([(1, CHROME), (2, CHROME), (3, None)], "n int, user_agent string")
    joined = {(r.n, r.ua_browser) for r in with_user_agent(rows, dim).collect()}
    assert joined == {(1, "Chrome"), (2, "Chrome"), (3, None)}


def test_user_agent_classifier_names_the_library_versions():
    assert user_agent_classifier().startswith("user-agents 2.2.0, ua-parser ")


@pytest.fixture(scope="module")
def database():
    return geoip.default_database()


def _expected(database, ip):
    with maxminddb.open_database(database) as reader:
        try:
            rec = reader.get(ip) or {}
        except ValueError:  # not an IP
            rec = {}
    return (
        (rec.get("country") or {}).get("iso_code"),
        ((rec.get("city") or {}).get("names") or {}).get("en"),
        (rec.get("location") or {}).get("latitude"),
        (rec.get("location") or {}).get("longitude"),
    )


def test_ips_are_located_with_city_and_coordinates(spark, database):
    ips = ["81.2.69.160", "89.160.20.112", "8.8.8.8", "10.0.0.1", "not-an-ip"]
    opener = geoip.ship(spark, database)
    dim = locate_ips(spark.createDataFrame([(i,) for i in ips], "ip string"), opener, geoip.build_of(database))
    located = {r.ip: (r.country, r.city, r.latitude, r.longitude) for r in dim.collect()}
    assert located == {ip: _expected(database, ip) for ip in ips}
    # The database knows these: the test would not notice a lookup that returns nothing.
    assert located["81.2.69.160"][1] is not None and located["81.2.69.160"][2] is not None
    assert located["10.0.0.1"] == (None, None, None, None)
    rows = spark.createDataFrame([("81.2.69.160",), ("81.2.69.160",), ("10.0.0.1",)], "ip string")
    joined = sorted(tuple(r) for r in with_geo(rows, dim, "ip", ("country", "city")).collect())
    city = _expected(database, "81.2.69.160")[:2]
    assert joined == [("10.0.0.1", None, None), ("81.2.69.160", *city), ("81.2.69.160", *city)]


def test_database_build_names_type_and_epoch(database):
    assert geoip.build_of(database) == "GeoLite2-City build 1530653216"
