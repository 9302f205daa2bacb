"""JDBC targets (PostgreSQL, SQLite): staging writes through Spark, transactions through py4j.

Spark's JDBC writer commits per partition, so it cannot make "replace one report date"
atomic. Rows are therefore staged with Spark into `_stg_<table>`, and each report date
is then swapped in by one database transaction (DELETE + INSERT ... SELECT + state row)
on a plain JDBC connection from the driver: a failure rolls the whole date back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

DRIVERS = {"sqlite": "org.sqlite.JDBC", "postgresql": "org.postgresql.Driver"}


@dataclass(frozen=True)
class JdbcTarget:
    """Where gold is exported: a JDBC url, its dialect and credentials."""

    url: str
    dialect: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def driver(self) -> str:
        return DRIVERS[self.dialect]

    def properties(self) -> dict[str, str]:
        props = {"driver": self.driver}
        if self.user:
            props["user"] = self.user
        if self.password:
            props["password"] = self.password
        if self.dialect == "sqlite":
            props["busy_timeout"] = "30000"
        return props


@contextmanager
def connect(spark: SparkSession, target: JdbcTarget):
    """A java.sql.Connection with autocommit off; closed on exit."""
    jvm = spark.sparkContext._jvm
    # The driver jar came in through spark.jars, which java.sql.DriverManager cannot see
    # from py4j's class loader; instantiate the driver from Spark's loader instead.
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    driver = jvm.java.lang.Class.forName(target.driver, True, loader).newInstance()
    props = jvm.java.util.Properties()
    for key, value in target.properties().items():
        props.setProperty(key, value)
    if target.dialect == "sqlite":
        Path(target.url.removeprefix("jdbc:sqlite:")).parent.mkdir(parents=True, exist_ok=True)
    conn = driver.connect(target.url, props)
    if conn is None:
        raise RuntimeError(f"JDBC driver {target.driver} does not accept url {target.url}")
    try:
        conn.setAutoCommit(False)
        yield conn
    finally:
        conn.close()


def execute(conn, sql: str, params: tuple = ()) -> int:
    """Run one statement with string/number parameters; returns the update count."""
    stmt = conn.prepareStatement(sql)
    try:
        for i, value in enumerate(params, start=1):
            if value is None:
                stmt.setObject(i, None)
            elif isinstance(value, int):
                stmt.setLong(i, value)
            else:
                stmt.setString(i, str(value))
        return stmt.executeUpdate()
    finally:
        stmt.close()


def query(conn, sql: str) -> list[tuple]:
    """Rows of a small query, every value as text (or None)."""
    stmt = conn.createStatement()
    try:
        rs = stmt.executeQuery(sql)
        n = rs.getMetaData().getColumnCount()
        rows = []
        while rs.next():
            rows.append(tuple(rs.getString(i) for i in range(1, n + 1)))
        return rows
    finally:
        stmt.close()


def run_script(conn, script: str) -> None:
    """Execute a `;`-separated DDL script and commit."""
    stmt = conn.createStatement()
    try:
        code = "\n".join(ln for ln in script.splitlines() if not ln.strip().startswith("--"))
        for sql in (s.strip() for s in code.split(";")):
            if sql:
                stmt.execute(sql)
        conn.commit()
    finally:
        stmt.close()


def for_dialect(df: DataFrame, dialect: str) -> DataFrame:
    """SQLite has no date/time types: stage dates and timestamps as ISO text."""
    if dialect != "sqlite":
        return df
    cols = []
    for f in df.schema.fields:
        if isinstance(f.dataType, T.DateType):
            cols.append(F.date_format(f.name, "yyyy-MM-dd").alias(f.name))
        elif isinstance(f.dataType, T.TimestampType):
            cols.append(F.date_format(f.name, "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(f.name))
        else:
            cols.append(F.col(f.name))
    return df.select(*cols)


def stage(df: DataFrame, target: JdbcTarget, table: str, like: str, index: str | None = None) -> None:
    """Replace staging table `table` (shaped like table `like`) with the rows of `df`, indexed
    on column `index` when given (the per-date swap then reads each date's rows, not all)."""
    # The table is made here, not by Spark's overwrite: Spark 4 only trusts a "table not
    # found" SQLSTATE when probing for a table, and SQLite's driver reports a generic one.
    with connect(df.sparkSession, target) as conn:
        execute(conn, f"DROP TABLE IF EXISTS {table}")
        execute(conn, f"CREATE TABLE {table} AS SELECT * FROM {like} WHERE 1 = 0")
        conn.commit()
    (
        for_dialect(df, target.dialect)
        # SQLite takes one writer at a time; gold rows per export are few, and raw rows
        # (`export.raw_rows`) are for sites small enough for one writer (docs/raw-rows.md).
        .coalesce(1)
        .write.format("jdbc")
        .mode("append")
        .option("url", target.url)
        .option("dbtable", table)
        .options(**target.properties())
        .save()
    )
    if index:
        with connect(df.sparkSession, target) as conn:
            execute(conn, f"CREATE INDEX {table}_{index} ON {table} ({index})")
            conn.commit()


def _date_param(dialect: str) -> str:
    return "CAST(? AS DATE)" if dialect == "postgresql" else "?"


def prepare_export(spark: SparkSession, target: JdbcTarget, ddl: str) -> dict[str, str]:
    """Create the export's tables if needed (`ddl`); returns {report_date: refresh id} already exported."""
    with connect(spark, target) as conn:
        run_script(conn, ddl)
        return {str(d)[:10]: rid for d, rid in query(conn, "SELECT report_date, refresh_id FROM lakehouse_export_state")}


def statements_creating(script: str, tables: tuple[str, ...] | list[str]) -> str:
    """The `CREATE TABLE IF NOT EXISTS <table>` statements of `script` for `tables` only."""
    statements = ("\n".join(ln for ln in script.splitlines() if not ln.strip().startswith("--"))).split(";")
    made = re.compile(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)
    return ";\n".join(s.strip() for s in statements if (m := made.match(s)) and m.group(1) in tables)


def replace_report_dates(
    spark: SparkSession,
    target: JdbcTarget,
    columns: dict[str, list[str]],
    dates: dict[str, str],
    date_columns: dict[str, str] | None = None,
) -> Iterator[tuple[str, dict[str, int]]]:
    """Swap each report date of `dates` ({date: refresh id}) into `columns`' tables from their
    `_stg_<table>` staging copies, one transaction per date (DELETE + INSERT ... SELECT +
    the `lakehouse_export_state` row); yields (date, {table: rows moved}) as each one commits.
    A table's date column is `report_date` unless `date_columns` names another.

    A failure rolls its date back and is raised: earlier dates stay exported, none is half done.
    """
    p = _date_param(target.dialect)
    date_columns = date_columns or {}
    with connect(spark, target) as conn:
        for day in sorted(dates):
            try:
                moved = {}
                for table, names in columns.items():
                    listed, on = ", ".join(names), date_columns.get(table, "report_date")
                    execute(conn, f"DELETE FROM {table} WHERE {on} = {p}", (day,))
                    moved[table] = execute(
                        conn, f"INSERT INTO {table} ({listed}) SELECT {listed} FROM _stg_{table} WHERE {on} = {p}", (day,)
                    )
                execute(
                    conn,
                    "INSERT INTO lakehouse_export_state (report_date, refresh_id, exported_at) "
                    f"VALUES ({p}, ?, CURRENT_TIMESTAMP) ON CONFLICT (report_date) "
                    "DO UPDATE SET refresh_id = excluded.refresh_id, exported_at = excluded.exported_at",
                    (day, dates[day]),
                )
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            yield day, moved


def newest_timestamp(spark: SparkSession, target: JdbcTarget, table: str, column: str):
    """The largest timestamp of `column` in `table` (None for an empty table), read through
    Spark's JDBC reader: it maps database timestamps back exactly as its writer mapped them
    (PostgreSQL's TIMESTAMP holds the JVM's wall-clock time; SQLite the UTC text of
    `for_dialect`), so it compares exactly with the Spark value that was exported."""
    if target.dialect == "sqlite":  # the text `for_dialect` wrote (its driver types MAX() as a number)
        with connect(spark, target) as conn:
            text = query(conn, f"SELECT MAX({column}) FROM {table}")[0][0]
        return datetime.fromisoformat(text) if text else None
    return (
        spark.read.format("jdbc")
        .option("url", target.url)
        .option("query", f"SELECT MAX({column}) AS newest FROM {table}")
        .options(**target.properties())
        .load()
        .first()[0]
    )


def upsert_staged(
    spark: SparkSession,
    target: JdbcTarget,
    table: str,
    names: list[str],
    keys: tuple[str, ...],
    staged: str | None = None,
    unless_larger: str | None = None,
) -> int:
    """Insert the rows of `staged` (default `_stg_<table>`) into `table`, replacing the rows
    with the same `keys`, in one transaction; returns the rows written. With `unless_larger`
    (a column), a stored row whose value there is larger is left as it is. A failure rolls
    it all back."""
    listed = ", ".join(names)
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
    keep = f" WHERE {table}.{unless_larger} <= excluded.{unless_larger}" if unless_larger else ""
    with connect(spark, target) as conn:
        try:
            # `WHERE true`: SQLite would read `ON` as the start of a join constraint without it.
            moved = execute(
                conn,
                f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {staged or '_stg_' + table} WHERE true "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}{keep}",
            )
            conn.commit()
        except Exception:
            conn.rollback()
            raise
    return moved
