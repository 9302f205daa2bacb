import re

from lakehouse.feeds.access_logs.log_format import COMBINED, COMMON, compile_log_format

LINE = '203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 "http://ex.com/" "Mozilla/4.08 \\"q\\""'


def test_combined_compiles_to_one_regex_with_field_groups():
    compiled = compile_log_format(COMBINED)
    groups = re.match(compiled.regex, LINE).groups()
    assert groups[compiled.groups["ip"] - 1] == "203.0.113.9"
    assert groups[compiled.groups["time"] - 1] == "10/Oct/2000:13:55:36 -0700"
    assert groups[compiled.groups["request"] - 1] == "GET /a.gif?x=1 HTTP/1.0"
    assert groups[compiled.groups["user_agent"] - 1] == 'Mozilla/4.08 \\"q\\"'
    assert compiled.has_response_time is False


def test_combined_rejects_common_lines_unless_asked():
    common_line = '203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 -'
    assert re.match(compile_log_format(COMBINED).regex, common_line) is None
    assert re.match(compile_log_format(COMBINED, accept_common=True).regex, common_line) is not None


def test_truncated_line_does_not_match():
    assert re.match(compile_log_format(COMBINED, True).regex, LINE[:-10]) is None


def test_response_time_directive_gets_a_group():
    compiled = compile_log_format(COMBINED + " %D")
    assert compiled.has_response_time
    m = re.match(compiled.regex, LINE + " 1234")
    assert m.group(compiled.groups["response_us"]) == "1234"


def test_unmodelled_directive_leaves_the_format_to_apachelogs():
    compiled = compile_log_format('%h %{%Y-%m-%d}t "%r"')
    assert compiled.regex is None


def test_common_format_alone():
    compiled = compile_log_format(COMMON)
    assert "referrer" not in compiled.groups
