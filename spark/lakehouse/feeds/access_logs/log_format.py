"""Compile an Apache `LogFormat` string into one JVM regex (the fast path).

Each directive becomes one capture group; the fields we model (ip, time, request,
status, bytes, referrer, user agent, response time) are remembered by group index.
Formats with directives we cannot express exactly (e.g. `%{...}t` strftime times)
compile to `None`, and every line then takes the apachelogs path instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
COMMON = '%h %l %u %t "%r" %>s %b'

_DIRECTIVE = re.compile(r"%([<>])?(?:!?\d{3}(?:,\d{3})*)?(?:\{([^}]*)\})?([a-zA-Z%])")

# A quoted field as Apache writes it: any char but a quote or backslash, or an escape.
# Written as an unrolled loop: `(?:[^"\\]|\\.)*` tries an alternation per character
# and is several times slower in java.util.regex. Possessive (`*+`): java.util.regex
# recurses once per repetition of a greedy group, so a field of a few thousand escapes
# overflowed the thread's stack, which kills the executor (and a local driver) outright.
# The two parts never match the same character, so giving up backtracking loses no match.
_QUOTED = r'([^"\\]*+(?:\\.[^"\\]*+)*+)'
_TOKEN = r"(\S+)"
_NUMBER_OR_DASH = r"(\d+|-)"

# (field name, regex) for the directives whose text we know exactly.
_SIMPLE = {
    "h": ("ip", _TOKEN),
    "a": ("ip", _TOKEN),
    "t": ("time", r"\[([^\]]+)\]"),
    "r": ("request", None),
    "s": ("status", r"(\d{3})"),
    "b": ("bytes", _NUMBER_OR_DASH),
    "B": ("bytes", r"(\d+)"),
    "O": ("bytes_sent", _NUMBER_OR_DASH),
    "D": ("response_us", _NUMBER_OR_DASH),
    "T": ("response_s", _NUMBER_OR_DASH),
    "l": (None, _TOKEN),
    "u": (None, _TOKEN),
    "v": ("vhost", _TOKEN),
    "V": ("vhost", _TOKEN),
    "p": (None, r"(\d+)"),
    "m": (None, _TOKEN),
    "U": (None, _TOKEN),
    "q": (None, r"(\S*)"),
    "H": (None, _TOKEN),
    "I": (None, _NUMBER_OR_DASH),
    "S": (None, _NUMBER_OR_DASH),
    "X": (None, r"([X+\-])"),
    "k": (None, r"(\d+)"),
    "P": (None, r"(\d+)"),
    "L": (None, _TOKEN),
}
_HEADERS = {"referer": "referrer", "user-agent": "user_agent"}
_T_UNITS = {"s": "response_s", "ms": "response_ms", "us": "response_us"}

# The order of the string fields every parser (regex or apachelogs) hands on.
FIELDS = ("ip", "time", "request", "status", "bytes", "referrer", "user_agent", "response_us")


@dataclass(frozen=True)
class CompiledFormat:
    """A LogFormat as one anchored Java regex plus the group index of each field."""

    log_format: str
    regex: str | None
    groups: dict[str, int]
    has_response_time: bool


def _escape_literal(text: str) -> str:
    # Java regex: a backslash before a non-alphanumeric char is always a literal.
    return "".join(c if c.isalnum() or c == " " else "\\" + c for c in text)


def _directive_regex(name: str | None, letter: str, quoted: bool) -> tuple[str | None, str | None]:
    if letter == "i":
        field = _HEADERS.get((name or "").lower())
        return field, (_QUOTED if quoted else _TOKEN)
    if letter == "T":
        field = _T_UNITS.get(name or "s")
        return (field, _NUMBER_OR_DASH) if field else (None, None)
    if letter == "t" and name:
        return None, None  # custom strftime: left to apachelogs
    if letter == "r":
        return "request", (_QUOTED if quoted else r"(.*?)")
    if letter in _SIMPLE:
        field, regex = _SIMPLE[letter]
        if quoted and regex in (_TOKEN, r"(\S*)"):
            regex = _QUOTED
        return field, regex
    if letter in "ieCno":  # other headers, env vars, cookies, notes: free text
        return None, (_QUOTED if quoted else _TOKEN)
    return None, None


def compile_log_format(log_format: str, accept_common: bool = False) -> CompiledFormat:
    """Compile `log_format`; with `accept_common`, a Combined format also matches Common lines."""
    parts: list[str] = []
    groups: dict[str, int] = {}
    group = 0
    pos = 0
    supported = True
    optional_from: int | None = None
    if accept_common and log_format.startswith(COMMON) and log_format != COMMON:
        optional_from = len(COMMON)
    for match in _DIRECTIVE.finditer(log_format):
        if optional_from is not None and pos <= optional_from < match.start():
            parts.append(_escape_literal(log_format[pos:optional_from]) + "(?:")
            pos = optional_from
        parts.append(_escape_literal(log_format[pos : match.start()]))
        pos = match.end()
        _modifier, name, letter = match.groups()
        if letter == "%":
            parts.append("%")
            continue
        quoted = match.start() > 0 and log_format[match.start() - 1] == '"' and log_format[pos : pos + 1] == '"'
        field, regex = _directive_regex(name, letter, quoted)
        if regex is None:
            supported = False
            break
        group += 1
        parts.append(regex)
        if field and field not in groups:
            groups[field] = group
    tail = log_format[pos:]
    if optional_from is not None and pos <= optional_from:
        parts.append(_escape_literal(tail))
        tail = ""
        optional_from = None
    parts.append(_escape_literal(tail))
    if optional_from is not None:
        parts.append(")?")
    has_rt = bool(re.search(r"%(?:\{[^}]*\})?[DT]", log_format))
    if not supported or "time" not in groups:
        return CompiledFormat(log_format, None, {}, has_rt)
    return CompiledFormat(log_format, "^" + "".join(parts) + r"\s*$", groups, has_rt)
