"""Bronze access-log lines -> typed, validated rows (silver) or quarantine reasons.

Fast path: the configured LogFormat compiled to one regex, applied in the JVM with a
single `regexp_replace` that rewrites a matching line into its fields joined by a
separator. Lines it rejects (and every line, when the format has directives the
compiler does not model) go through `apachelogs`, in a pandas UDF that only receives
the rejected lines' text (all others arrive as nulls, so the Python side costs little).
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.common import (
    normalized_line,
    out_of_range_reason,
    with_event_date,
    with_message_checks,
)
from lakehouse.transforms.log_format import COMMON, FIELDS, CompiledFormat

_SEP = "\u0001"
_MARK = "\u0002"
_TIME_PATTERN = "dd/MMM/yyyy:HH:mm:ss Z"

PARSED_FIELDS = T.StructType([T.StructField(name, T.StringType()) for name in FIELDS])


def with_line(df: DataFrame) -> DataFrame:
    """Add `line` (value without CR/LF) and `is_blank` (never null: a null value is blank
    here; `with_message_checks` later quarantines it when it came from Kafka)."""
    return df.withColumn("line", normalized_line(F.col("value"))).withColumn(
        "is_blank", F.coalesce(F.col("line").rlike(r"^\s*$"), F.lit(True))
    )


def with_fast_fields(df: DataFrame, compiled: CompiledFormat) -> DataFrame:
    """Add `fields` (a struct of FIELDS) from the compiled regex; null when the line does not match."""
    if compiled.regex is None:
        return df.withColumn("fields", F.lit(None).cast(PARSED_FIELDS))
    ordered = [compiled.groups.get(f) for f in FIELDS[:-1]]
    rt_field = next((f for f in ("response_us", "response_ms", "response_s") if f in compiled.groups), None)
    ordered.append(compiled.groups.get(rt_field) if rt_field else None)
    present = [g for g in ordered if g is not None]
    replacement = _MARK + _SEP.join(f"${g}" for g in present)
    line = F.col("line")
    # Separate projections on purpose: written as one expression, Spark re-evaluated the
    # regex and the split once per field (8x the work).
    staged = df.withColumn("_rewritten", F.regexp_replace(line, F.lit(compiled.regex), F.lit(replacement))).withColumn(
        "_parts",
        F.when(
            F.col("_rewritten").startswith(_MARK) & ~line.startswith(_MARK),
            F.split(F.substring(F.col("_rewritten"), 2, 1 << 30), _SEP, -1),
        ),
    )
    parts = F.col("_parts")
    values = []
    idx = 0
    for name, group in zip(FIELDS, ordered, strict=True):
        if group is None:
            values.append(F.lit(None).cast("string").alias(name))
            continue
        idx += 1
        # A group that did not take part (the optional Combined tail) comes back as "".
        value = F.element_at(parts, idx)
        values.append(F.when(value != "", value).alias(name))
    scale = {"response_ms": 1000, "response_s": 1000000}.get(rt_field or "")
    if scale:
        pos = FIELDS.index("response_us")
        raw = F.element_at(parts, len(present))
        values[pos] = F.when(raw.isNotNull() & (raw != "-"), (raw.try_cast("double") * scale).cast("string")).alias("response_us")
    return staged.withColumn("fields", F.when(parts.isNotNull(), F.struct(*values))).drop("_rewritten", "_parts")


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


def parse_access_log(df: DataFrame, compiled: CompiledFormat, accept_common: bool = True) -> DataFrame:
    """Add `fields` (the parsed strings of FIELDS) to bronze rows; null when neither parser took it."""
    fast = df.transform(with_line).transform(lambda d: with_fast_fields(d, compiled))
    fallback = make_apachelogs_parser(compiled.log_format, accept_common)
    needs_fallback = F.col("fields").isNull() & ~F.col("is_blank")
    slow = fallback(F.when(needs_fallback, F.col("line"))).alias("slow")
    return fast.withColumn(
        "fields",
        F.when(F.col("fields").isNotNull(), F.col("fields")).otherwise(
            F.when(slow.getField("time").isNotNull(), slow)
        ),
    )


def _unescape(col: Column) -> Column:
    """Undo Apache's `\\"` and `\\\\` escapes; `-` (no header) becomes null."""
    plain = F.when(F.instr(col, "\\") > 0, F.regexp_replace(col, r'\\(["\\])', "$1")).otherwise(col)
    return F.when(col != "-", plain)


def with_request_parts(df: DataFrame) -> DataFrame:
    """Split the request line into method, path, protocol; endpoint and query from the path."""
    parts = F.split(F.col("request"), " ")
    n = F.size(parts)
    well_formed = F.col("request").isNotNull() & n.between(2, 3) & F.element_at(parts, 1).rlike("^[A-Za-z]+$")
    path = F.when(well_formed, F.element_at(parts, 2))
    return (
        df.withColumn("method", F.when(well_formed, F.upper(F.element_at(parts, 1))))
        .withColumn("path", path)
        .withColumn("protocol", F.when(well_formed & (n == 3), F.element_at(parts, 3)))
        .withColumn("endpoint", F.coalesce(F.substring_index(path, "?", 1), F.lit("-")))
        .withColumn("query", F.when(F.instr(path, "?") > 0, F.expr("substring(path, instr(path, '?') + 1)")))
    )


def type_access_log(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Typed columns from `fields`, plus `reason` (null when the row is valid)."""
    f = F.col("fields")
    bytes_text = f.getField("bytes")
    rt_text = f.getField("response_us")
    typed = (
        df.withColumn("ip", f.getField("ip"))
        .withColumn("request", _unescape(f.getField("request")))
        .withColumn("event_ts", F.try_to_timestamp(f.getField("time"), F.lit(_TIME_PATTERN)))
        .withColumn("status", f.getField("status").try_cast("int"))
        .withColumn("bytes", F.when(bytes_text != "-", bytes_text.try_cast("bigint")))
        .withColumn("referrer", _unescape(f.getField("referrer")))
        .withColumn("user_agent", _unescape(f.getField("user_agent")))
        .withColumn("response_time_ms", F.when(rt_text != "-", rt_text.try_cast("double") / 1000.0))
        .transform(with_request_parts)
        .transform(with_event_date)
    )
    line = F.col("line")
    quotes = F.length(line) - F.length(F.replace(line, F.lit('"'), F.lit("")))
    escaped_quotes = (F.length(line) - F.length(F.replace(line, F.lit('\\"'), F.lit("")))) / 2
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(
            f.isNull() & line.rlike("[\\x00-\\x08\\x0E-\\x1F\\uFFFD]"),
            F.lit("unparseable line: binary or non-UTF-8 bytes"),
        )
        .when(f.isNull() & (((quotes - escaped_quotes) % 2) == 1), F.lit("truncated line: unbalanced quotes"))
        .when(f.isNull(), F.lit("line does not match the log format"))
        .when(F.col("event_ts").isNull(), F.concat(F.lit("unparseable timestamp: "), f.getField("time")))
        .when(F.col("status").isNull(), F.lit("invalid status"))
        .otherwise(out_of_range_reason(F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours))
    )
    return typed.withColumn("reason", reason)


def with_event_id(df: DataFrame) -> DataFrame:
    """`event_id`: sha-256 of the normalised line, so the same line always gets the same id."""
    return df.withColumn("event_id", F.sha2(F.col("line"), 256))


def access_log_rows(df: DataFrame, compiled: CompiledFormat, accept_common: bool, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Bronze rows -> parsed, typed rows with `reason` and `is_blank` (the whole silver parse)."""
    return (
        df.transform(lambda d: parse_access_log(d, compiled, accept_common))
        .transform(lambda d: type_access_log(d, min_event_date, max_future_hours))
        .transform(with_message_checks)
        .transform(with_event_id)
    )


SILVER_COLUMNS = (
    "event_id", "ip", "event_ts", "event_date", "method", "path", "endpoint", "query", "protocol",
    "status", "bytes", "referrer", "user_agent", "ua_browser", "ua_os", "ua_device", "is_bot",
    "country", "city", "latitude", "longitude", "response_time_ms",
    "source_file", "topic", "partition", "offset", "ingested_at",
)

