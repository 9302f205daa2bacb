"""Bronze access-log lines -> typed, validated rows (silver) or quarantine reasons.

Fast path: the configured LogFormat compiled to one regex, applied in the JVM with a
single `regexp_replace` that rewrites a matching line into its fields joined by a
separator, then split. A line that itself holds the separator (a control byte inside a
quoted field) never takes that path, so input can never shift the fields. Lines the
fast path does not take (and every line, when the format has directives the compiler
does not model) go through `apachelogs`, in a pandas UDF that only receives those
lines' text (all others arrive as nulls, so the Python side costs little).
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.feeds.access_logs.log_format import COMMON, FIELDS, CompiledFormat
from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.records import (
    MAX_ENDPOINT_LENGTH,
    MAX_HOST_LENGTH,
    is_blank_line,
    normalized_line,
    out_of_range_reason,
    record_place,
    require_columns,
    too_long_reason,
    url_host,
    with_event_date,
    with_message_checks,
)

_SEP = "\u0001"
_MARK = "\u0002"
_TIME_PATTERN = "dd/MMM/yyyy:HH:mm:ss Z"
NO_MATCH = "line does not match the log format"

PARSED_FIELDS = T.StructType([T.StructField(name, T.StringType()) for name in FIELDS])


def with_line(df: DataFrame) -> DataFrame:
    """Add `line` (value without CR/LF) and `is_blank` (never null: a null value is blank
    here; `with_message_checks` later quarantines it when it came from Kafka)."""
    return df.withColumn("line", normalized_line(F.col("value"))).withColumn(
        "is_blank", is_blank_line(F.col("line"))
    )


def field_text(name: str) -> str:
    """Name of the column holding field `name` (one of FIELDS) as parsed text."""
    return f"_raw_{name}"


FIELD_TEXT_COLUMNS = tuple(field_text(name) for name in FIELDS)


def with_fast_fields(df: DataFrame, compiled: CompiledFormat) -> DataFrame:
    """Add `_parsed` (the regex matched) and the FIELDS as text columns (`field_text`) from the compiled regex."""
    if compiled.regex is None:
        return df.withColumns({"_parsed": F.lit(False), **{c: F.lit(None).cast("string") for c in FIELD_TEXT_COLUMNS}})
    ordered = [compiled.groups.get(f) for f in FIELDS[:-1]]
    rt_field = next((f for f in ("response_us", "response_ms", "response_s") if f in compiled.groups), None)
    ordered.append(compiled.groups.get(rt_field) if rt_field else None)
    present = [g for g in ordered if g is not None]
    # The mark ends the rewritten line, so the parts are the split itself (no copy).
    replacement = _SEP.join(f"${g}" for g in present) + _SEP + _MARK
    line = F.col("line")
    # Separate projections on purpose: written as one expression, Spark re-evaluated the
    # regex and the split once per field (8x the work). Flat columns, not a struct: a
    # struct is copied by every projection it passes through.
    # A line that itself holds the separator or the mark (control bytes Apache never writes
    # unescaped) would come apart in the wrong places: it is left to apachelogs,
    # which needs no separator, like any line the regex rejects.
    staged = df.withColumn("_rewritten", F.regexp_replace(line, F.lit(compiled.regex), F.lit(replacement))).withColumn(
        "_parts",
        F.when(
            F.col("_rewritten").endswith(_SEP + _MARK) & ~line.contains(_SEP) & ~line.contains(_MARK),
            F.split(F.col("_rewritten"), _SEP, -1),
        ),
    )
    parts = F.col("_parts")
    values = {}
    idx = 0
    for name, group in zip(FIELDS, ordered, strict=True):
        if group is None:
            values[field_text(name)] = F.lit(None).cast("string")
            continue
        idx += 1
        # A group that did not take part (the optional Combined tail) comes back as "".
        # `get` (0-based, null when out of range) rather than element_at: much less code.
        value = F.get(parts, idx - 1)
        values[field_text(name)] = F.when(value != "", value)
    scale = {"response_ms": 1000, "response_s": 1000000}.get(rt_field or "")
    if scale:
        raw = F.get(parts, len(present) - 1)
        values[field_text("response_us")] = F.when(raw.isNotNull() & (raw != "-"), (raw.try_cast("double") * scale).cast("string"))
    return staged.withColumns({"_parsed": parts.isNotNull(), **values}).drop("_rewritten", "_parts")


def make_apachelogs_parser(log_format: str, accept_common: bool):
    """A pandas UDF parsing lines with apachelogs; null in, null out; failures give null."""
    formats = [log_format]
    if accept_common and log_format != COMMON and log_format.startswith(COMMON):
        formats.append(COMMON)

    @F.pandas_udf(PARSED_FIELDS)
    def parse_with_apachelogs(lines: pd.Series) -> pd.DataFrame:
        # Imported here: the UDF runs in Python workers, where apachelogs is only needed
        # for the (usually few) lines the JVM regex rejected.
        from apachelogs import InvalidEntryError, LogParser

        parsers = [LogParser(fmt) for fmt in formats]
        rows = []
        for line in lines:
            rows.append(_parse_one(line, parsers, InvalidEntryError))
        return pd.DataFrame(rows, columns=list(FIELDS))

    return parse_with_apachelogs


def _parse_one(line, parsers, invalid_error) -> tuple:
    if line is None:
        return (None,) * len(FIELDS)
    for parser in parsers:
        try:
            entry = parser.parse(line)
        except invalid_error:
            continue
        except Exception:  # noqa: BLE001 - any library failure means "not this format"
            continue
        d = entry.directives
        headers = {k.lower(): v for k, v in d.items() if k.endswith("i")}
        when = getattr(entry, "request_time", None)
        time = when.strftime("%d/%b/%Y:%H:%M:%S %z") if when is not None else None
        status = next((d[k] for k in ("%>s", "%s", "%<s") if d.get(k) is not None), None)
        has_bytes = any(k in d for k in ("%b", "%B", "%O"))
        size = next((d[k] for k in ("%b", "%B", "%O") if d.get(k) is not None), None)
        rt_us = None
        for key, factor in (("%D", 1), ("%{us}T", 1), ("%{ms}T", 1000), ("%T", 1000000), ("%{s}T", 1000000)):
            if isinstance(d.get(key), int):
                rt_us = str(d[key] * factor)
                break
        return (
            next((d[k] for k in ("%h", "%a", "%{c}a") if d.get(k) is not None), None),
            time,
            d.get("%r") if d.get("%r") is not None else ("-" if "%r" in d else None),
            None if status is None else str(status),
            str(size) if size is not None else ("-" if has_bytes else None),
            headers.get("%{referer}i"),
            headers.get("%{user-agent}i"),
            rt_us,
        )
    return (None,) * len(FIELDS)


def rejected_line_reason(line: Column) -> Column:
    """Why no parser took `line`: binary bytes, a truncated line, or another format."""
    quotes = F.length(line) - F.length(F.replace(line, F.lit('"'), F.lit("")))
    escaped_quotes = (F.length(line) - F.length(F.replace(line, F.lit('\\"'), F.lit("")))) / 2
    return (
        F.when(line.rlike("[\\x00-\\x08\\x0E-\\x1F\\uFFFD]"), F.lit("unparseable line: control bytes (binary data)"))
        .when(((quotes - escaped_quotes) % 2) == 1, F.lit("truncated line: unbalanced quotes"))
        .otherwise(F.lit(NO_MATCH))
    )


def parse_access_log(df: DataFrame, compiled: CompiledFormat, accept_common: bool = True, with_apachelogs: bool = True) -> DataFrame:
    """Add the FIELDS as text (`field_text`), `_parsed`, and `_rejected` (why no parser took the line).

    With `with_apachelogs=False` only the JVM regex runs, and `_rejected` is provisional: the
    lines it rejected are left for the apachelogs pass (see `access_log_rows`).
    """
    fast = df.transform(with_line).transform(lambda d: with_fast_fields(d, compiled))
    rejected = ~F.col("_parsed") & ~F.col("is_blank")
    if not with_apachelogs:
        return fast.withColumn("_rejected", F.when(rejected, F.lit(NO_MATCH)))
    parser = make_apachelogs_parser(compiled.log_format, accept_common)
    slow = F.col("_slow")
    took = F.col("_parsed") | slow.getField("time").isNotNull()
    return (
        fast.withColumn("_slow", parser(F.when(rejected, F.col("line"))))
        .withColumns(
            {
                "_parsed": took,
                **{
                    field_text(name): F.when(F.col("_parsed"), F.col(field_text(name))).when(took, slow.getField(name))
                    for name in FIELDS
                },
            }
        )
        .withColumn("_rejected", F.when(rejected, rejected_line_reason(F.col("line"))))
        .drop("_slow")
    )


def _unescape(col: Column) -> Column:
    """Undo Apache's `\\"` and `\\\\` escapes; `-` (no header) becomes null."""
    # One left-to-right regex pass, and only for fields holding a backslash (few).
    plain = F.regexp_replace(col, r'\\(["\\])', "$1")
    return F.when(col != "-", F.when(col.contains("\\"), plain).otherwise(col))


def with_request_parts(df: DataFrame) -> DataFrame:
    """Split the request line `METHOD TARGET [PROTOCOL]` into method, path, protocol;
    endpoint and query from the path.

    The target is everything between the method and the protocol, spaces included (a
    client that sent `GET /a b HTTP/1.1` asked for `/a b`); the protocol is the last word
    when it looks like one (`HTTP/1.1`). A request line without a method and a target
    (`-`, garbage) has no method or path, and endpoint `-`.
    """
    # Plain string functions in staged projections (each computed once per row): the parse
    # is one generated method, which the JIT stops compiling past a size.
    request = F.col("request")
    rest = F.col("_rest")
    last = F.substring_index(rest, " ", -1)
    has_protocol = F.col("_has_protocol")
    path = F.col("path")
    return (
        df.withColumn("_space", F.instr(request, " "))
        .withColumn("_rest", F.when(F.col("_space") > 0, F.substr(request, F.col("_space") + 1)))
        .withColumn("_has_protocol", F.coalesce(F.instr(rest, " ") > 0, F.lit(False)) & last.rlike("^[A-Za-z]+/[0-9.]+$"))
        .withColumn(
            "_target",
            F.when(
                F.substring_index(request, " ", 1).rlike("^[A-Za-z]+$"),
                F.when(has_protocol, F.expr("substr(_rest, 1, length(_rest) - length(substring_index(_rest, ' ', -1)) - 1)")).otherwise(rest),
            ),
        )
        .withColumn("_well_formed", F.coalesce(F.col("_target") != "", F.lit(False)))
        .withColumns(
            {
                "method": F.when(F.col("_well_formed"), F.upper(F.substring_index(request, " ", 1))),
                "path": F.when(F.col("_well_formed"), F.col("_target")),
                "protocol": F.when(F.col("_well_formed") & has_protocol, last),
            }
        )
        .withColumns(
            {
                "endpoint": F.coalesce(F.substring_index(path, "?", 1), F.lit("-")),
                "query": F.when(F.instr(path, "?") > 0, F.expr("substring(path, instr(path, '?') + 1)")),
            }
        )
        .drop("_space", "_rest", "_has_protocol", "_target", "_well_formed")
    )


def type_access_log(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Typed columns from the parsed text fields, plus `reason` (null when the row is valid)."""
    raw = {name: F.col(field_text(name)) for name in FIELDS}
    typed = (
        df.withColumns(
            {
                "ip": raw["ip"],
                "request": _unescape(raw["request"]),
                "event_ts": F.try_to_timestamp(raw["time"], F.lit(_TIME_PATTERN)),
                "status": raw["status"].try_cast("int"),
                # A count that fits a bigint, or `-` (null: nothing sent); anything else is
                # quarantined below, never read as 0.
                "bytes": F.when(raw["bytes"] != "-", raw["bytes"].try_cast("bigint")),
                "referrer": _unescape(raw["referrer"]),
                "user_agent": _unescape(raw["user_agent"]),
                "response_time_ms": F.when(raw["response_us"] != "-", raw["response_us"].try_cast("double") / 1000.0),
            }
        )
        .transform(with_request_parts)
        .transform(with_event_date)
    )
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(~F.col("_parsed"), F.col("_rejected"))
        .when(F.col("event_ts").isNull(), F.concat(F.lit("unparseable timestamp: "), raw["time"]))
        .when(~F.col("status").between(100, 599) | F.col("status").isNull(), F.concat(F.lit("invalid status: "), F.coalesce(raw["status"], F.lit("null"))))
        .when((raw["bytes"] != "-") & (F.col("bytes").isNull() | (F.col("bytes") < 0)), F.concat(F.lit("invalid bytes: "), raw["bytes"]))
        .when(F.length("endpoint") > MAX_ENDPOINT_LENGTH, too_long_reason(F.col("endpoint"), MAX_ENDPOINT_LENGTH, "path"))
        .when(F.length(url_host(F.col("referrer"))) > MAX_HOST_LENGTH,
              too_long_reason(url_host(F.col("referrer")), MAX_HOST_LENGTH, "referrer host"))
        .otherwise(out_of_range_reason(F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours))
    )
    return typed.withColumn("reason", reason)


def with_event_id(df: DataFrame) -> DataFrame:
    """`event_id`: sha-256 of the record's place in its source (`record_place`), so the same
    record always gets the same id and two identical lines are two events."""
    return df.withColumn("event_id", F.sha2(record_place(df), 256))


def access_log_rows(
    df: DataFrame,
    compiled: CompiledFormat,
    accept_common: bool,
    min_event_date: str,
    max_future_hours: int,
    with_apachelogs: bool = True,
) -> DataFrame:
    """Bronze rows -> parsed, typed rows with `reason` and `is_blank` (the whole silver parse).

    With `with_apachelogs=False` the apachelogs pass is left out and the lines the regex
    rejected are flagged `needs_reparse`: running this again with `with_apachelogs=True` on
    just those bronze rows gives their final form (a Python pass over few lines only).
    """
    require_columns(df, BRONZE_COLUMNS, "bronze access-log rows")
    rows = df.transform(lambda d: parse_access_log(d, compiled, accept_common, with_apachelogs))
    if not with_apachelogs:
        rows = rows.withColumn("needs_reparse", ~F.col("_parsed") & ~F.col("is_blank"))
    return (
        rows.transform(lambda d: type_access_log(d, min_event_date, max_future_hours))
        .transform(with_message_checks)
        .transform(with_event_id)
        .drop("_parsed", "_rejected", *FIELD_TEXT_COLUMNS)
    )


SILVER_COLUMNS = (
    "event_id", "ip", "event_ts", "event_date", "method", "path", "endpoint", "query", "protocol",
    "status", "bytes", "referrer", "user_agent", "ua_browser", "ua_os", "ua_device", "is_bot",
    "country", "city", "latitude", "longitude", "response_time_ms",
    "source_file", "topic", "partition", "offset", "ingested_at",
)

