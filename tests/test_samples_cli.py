"""`python -m lakehouse_dev.samples <kind>`: each kind writes the asked number of records."""

import json

import pytest

from lakehouse_dev import samples


@pytest.mark.parametrize(
    ("argv", "records"),
    [
        (["access", "--lines", "25", "--no-bad", "--format", "response_time"], 25),
        (["product-views", "--events", "12", "--no-bad", "--days", "1"], 12),
        (["web-events", "--events", "9", "--no-bad", "--seed", "5"], 9),
    ],
)
def test_each_kind_writes_the_records_asked_for(argv, records, tmp_path, capsys):
    out = tmp_path / "out"
    assert samples.main([*argv, "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == records
    if argv[0] != "access":
        assert all(isinstance(json.loads(line), dict) for line in lines)
    else:
        assert all(line.count('"') >= 6 for line in lines)  # request, referrer, user agent quoted
    assert f"wrote {out}" in capsys.readouterr().out


def test_the_count_flag_is_required(tmp_path):
    with pytest.raises(SystemExit):
        samples.main(["web-events", "--out", str(tmp_path / "x")])
