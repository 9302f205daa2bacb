"""User-agent and GeoIP dimensions: one row per distinct value, joined back."""

from lakehouse.transforms.enrich import (
    classify_user_agent,
    ip_geo_dimension,
    user_agent_dimension,
    with_geo,
)

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_classify_user_agent():
    assert classify_user_agent(CHROME) == ("Chrome", "Windows", "desktop", False)
    assert classify_user_agent(IPHONE) == ("Mobile Safari", "iOS", "mobile", False)
    assert classify_user_agent(GOOGLEBOT)[2:] == ("bot", True)


def test_user_agent_dimension_has_one_row_per_distinct_agent(spark):
    dim = user_agent_dimension(spark, [CHROME, CHROME, IPHONE, None])
    assert sorted((r.user_agent == CHROME, r.ua_device) for r in dim.collect()) == [(False, "mobile"), (True, "desktop")]


def test_user_agent_dimension_of_nothing_is_empty(spark):
    dim = user_agent_dimension(spark, [])
    assert dim.count() == 0
    assert dim.columns == ["user_agent", "ua_browser", "ua_os", "ua_device", "is_bot"]


def test_geo_dimension_and_join(spark):
    df = spark.createDataFrame([("8.8.8.8",), ("8.8.8.8",), ("10.0.0.1",), ("not-an-ip",)], "ip string")
    dim = ip_geo_dimension(spark, ["8.8.8.8", "8.8.8.8", "10.0.0.1", "not-an-ip", None], None)
    assert dim.count() == 3
    joined = {tuple(r) for r in with_geo(df, dim, "ip", ("country",)).collect()}
    assert joined == {("8.8.8.8", "US"), ("10.0.0.1", None), ("not-an-ip", None)}
