"""The exported gold database read without Spark: SQLite (stdlib) or PostgreSQL (psycopg 3).

`lakehouse serve` answers from here. The target is the export's own `export.url`, so the
API reads exactly what `lakehouse export` wrote. Connections are read-only and short:
a connect timeout and a statement timeout turn an unreachable or stuck database into
`GoldUnavailable` (the API's 503) instead of a hang. Every query is parameterised.
"""

from __future__ import annotations

import logging
import queue
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lakehouse.config import ConfigError, ExportConfig

log = logging.getLogger("lakehouse.gold_db")

CONNECT_TIMEOUT_SECONDS = 3  # libpq counts whole seconds, 2 at least
STATEMENT_TIMEOUT_MS = 10_000
IDLE_CONNECTIONS = 4  # PostgreSQL connections kept open between requests
_PARAM = re.compile(r"%\((\w+)\)s")


def _public_reason(error: Exception) -> str:
    """The kind of a connection failure, in words without host, port, database or user."""
    text = str(error).lower()
    if "timeout" in text or "timed out" in text:
        return "no answer from the database in time (timeout)"
    if "refused" in text:
        return "Connection refused by the database server"
    if "authentication" in text or "password" in text:
        return "the database refused the login"
    if "does not exist" in text:
        return "the database does not exist"
    return "cannot reach the database"


class GoldUnavailable(RuntimeError):
    """The gold database cannot answer now (unreachable, timed out, not exported yet).

    The message is for the operator's log (host, database, path, the driver's words);
    `public` is what an API client may read: the kind of failure, no host or path.
    """

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True)
class GoldDatabase:
    """Where the exported gold tables are: a SQLite file or PostgreSQL connection settings."""

    dialect: str
    sqlite_path: Path | None = None
    pg_params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def display(self) -> str:
        """The target without credentials, for messages."""
        if self.dialect == "sqlite":
            return f"sqlite:{self.sqlite_path}"
        p = self.pg_params
        return f"postgresql://{p.get('host')}:{p.get('port')}/{p.get('dbname')}"


def database_from(export: ExportConfig) -> GoldDatabase:
    """The gold database `export` writes to (`export.url`, user, password)."""
    dialect = export.dialect
    if dialect == "none":
        raise ConfigError("export.url is none: there is no exported gold database to serve")
    if dialect == "sqlite":
        return GoldDatabase("sqlite", sqlite_path=Path(export.url.removeprefix("jdbc:sqlite:")))
    parts = urlsplit(export.url.removeprefix("jdbc:"))
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
    }
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    user = export.user or query.get("user")
    password = export.password or query.get("password")
    if user:
        params["user"] = user
    if password:
        params["password"] = password
    # JDBC and libpq share only a few parameter names; sslmode is the one that matters here.
    if "sslmode" in query:
        params["sslmode"] = query["sslmode"]
    return GoldDatabase("postgresql", pg_params=params)


def _to_json(value: Any) -> Any:
    """Dates and times as ISO text whichever driver read them (SQLite holds them as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class GoldReader:
    """Runs read-only queries on a `GoldDatabase`; rows come back as dicts of JSON-ready values.

    Queries are written with `%(name)s` parameters (psycopg's style) and translated to
    `:name` for SQLite. Dates are passed as `datetime.date`.
    """

    def __init__(self, db: GoldDatabase) -> None:
        self.db = db
        self._idle: queue.LifoQueue = queue.LifoQueue(maxsize=IDLE_CONNECTIONS)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of `sql` with `params`; raises GoldUnavailable when the database cannot answer."""
        params = params or {}
        if self.db.dialect == "sqlite":
            return self._sqlite(sql, params)
        return self._postgres(sql, params)

    def close(self) -> None:
        """Close the idle PostgreSQL connections."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # --- SQLite: a connection per query (microseconds), read-only so the API can never write.

    def _sqlite(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        path = self.db.sqlite_path
        if path is None or not path.is_file():
            raise GoldUnavailable(f"no exported gold database at {path} (run `lakehouse export`)",
                                  "nothing exported yet (run `lakehouse export`)")
        values = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except sqlite3.Error as error:
            raise GoldUnavailable(f"cannot open {path}: {error}", "cannot open the database") from None
        try:
            cursor = conn.execute(_PARAM.sub(r":\1", sql), values)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except sqlite3.OperationalError as error:
            missing = _missing_table(str(error))
            raise GoldUnavailable(missing or f"{self.db.display}: {error}", missing or "the query failed") from None
        finally:
            conn.close()
        return [{n: _sqlite_value(n, v) for n, v in zip(names, row, strict=True)} for row in rows]

    # --- PostgreSQL: a few idle connections reused (a new one costs a fork and a SCRAM login).

    def _postgres(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        import psycopg

        try:
            return self._pg_run(self._pg_connection(fresh=False), sql, params)
        except psycopg.OperationalError:
            # A kept connection may have died with a server restart; the query is
            # read-only, so one retry on a new connection is safe.
            pass
        try:
            return self._pg_run(self._pg_connection(fresh=True), sql, params)
        except psycopg.OperationalError as error:
            raise GoldUnavailable(f"{self.db.display}: {_first_line(error)}", _public_reason(error)) from None

    def _pg_run(self, conn, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        import psycopg

        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                names = [d.name for d in cursor.description]
                rows = cursor.fetchall()
        except psycopg.errors.UndefinedTable as error:
            self._release(conn)
            missing = _missing_table(str(error))
            raise GoldUnavailable(missing or str(error), missing or "the query failed") from None
        except psycopg.errors.QueryCanceled:
            conn.close()
            raise GoldUnavailable(f"{self.db.display}: query took more than {STATEMENT_TIMEOUT_MS} ms",
                                  f"query took more than {STATEMENT_TIMEOUT_MS} ms") from None
        except BaseException:
            conn.close()
            raise
        self._release(conn)
        return [{n: _to_json(v) for n, v in zip(names, row, strict=True)} for row in rows]

    def _pg_connection(self, fresh: bool):
        import psycopg

        if not fresh:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
        try:
            return psycopg.connect(
                **self.db.pg_params,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="lakehouse-api",
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c default_transaction_read_only=on",
            )
        except psycopg.Error as error:
            raise GoldUnavailable(f"{self.db.display}: {_first_line(error)}", _public_reason(error)) from None

    def _release(self, conn) -> None:
        import psycopg

        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()


def _sqlite_value(name: str, value: Any) -> Any:
    # SQLite keeps timestamps as 'yyyy-MM-dd HH:mm:ss.SSSSSS' text: give them PostgreSQL's ISO form.
    if isinstance(value, str) and name.endswith(("_time", "_at")):
        try:
            return datetime.fromisoformat(value).isoformat()
        except ValueError:
            return value
    return value


def _missing_table(message: str) -> str | None:
    match = re.search(r'no such table: (\w+)|relation "(\w+)" does not exist', message)
    if not match:
        return None
    return f"table {match.group(1) or match.group(2)} is not exported yet (run `lakehouse export`)"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- the analytics queries: gold's daily rows summed over [start, end] ------------------


def _window(start: date | None, end: date | None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause over report_date (fixed text, values as parameters)."""
    clauses, params = [], {}
    if start is not None:
        clauses.append("report_date >= %(start)s")
        params["start"] = start
    if end is not None:
        clauses.append("report_date <= %(end)s")
        params["end"] = end
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def requests_per_endpoint(gold: GoldReader, start: date | None, end: date | None, limit: int) -> list[dict[str, Any]]:
    """Endpoints by requests over the window, with status classes, error rate and bytes."""
    where, params = _window(start, end)
    rows = gold.query(
        "SELECT endpoint, CAST(SUM(requests) AS BIGINT) AS requests,"
        " CAST(SUM(status_2xx) AS BIGINT) AS status_2xx, CAST(SUM(status_3xx) AS BIGINT) AS status_3xx,"
        " CAST(SUM(status_4xx) AS BIGINT) AS status_4xx, CAST(SUM(status_5xx) AS BIGINT) AS status_5xx,"
        " CAST(SUM(bytes) AS BIGINT) AS bytes"
        f" FROM endpoint_daily{where} GROUP BY endpoint ORDER BY requests DESC, endpoint LIMIT %(limit)s",
        params | {"limit": limit},
    )
    for row in rows:
        row["error_rate"] = _rate(row["status_4xx"] + row["status_5xx"], row["requests"])
    return rows


def top_ips(gold: GoldReader, start: date | None, end: date | None, limit: int) -> list[dict[str, Any]]:
    """IPs by requests over the window, summed from each day's top list (`gold.top_ips_per_day`).

    A row is `exact` when the IP made the list on every day of the window that has one (all
    its requests are in the sum); otherwise its `requests` is a lower bound, and an IP that
    made no day's list is not there at all (gold keeps only each day's top list).
    """
    where, params = _window(start, end)
    days = gold.query(f"SELECT COUNT(DISTINCT report_date) AS n FROM top_ips_daily{where}", params)[0]["n"]
    rows = gold.query(
        "SELECT ip, CAST(SUM(requests) AS BIGINT) AS requests, COUNT(*) AS days"
        f" FROM top_ips_daily{where} GROUP BY ip ORDER BY requests DESC, ip LIMIT %(limit)s",
        params | {"limit": limit},
    )
    return [row | {"exact": row["days"] == days} for row in rows]


def error_rate(gold: GoldReader, start: date | None, end: date | None, limit: int) -> dict[str, Any]:
    """Requests, 4xx, 5xx and error rate per day (the latest `limit` days) and over the whole window."""
    where, params = _window(start, end)
    # traffic_daily holds a row per day already (endpoint_daily a row per endpoint and day):
    # the days come back as they are, the total is their sum.
    days = gold.query(
        "SELECT report_date, requests, status_4xx, status_5xx"
        f" FROM traffic_daily{where} ORDER BY report_date DESC",
        params,
    )
    total = {"days": len(days)} | {k: sum(d[k] for d in days) for k in ("requests", "status_4xx", "status_5xx")}
    for row in [*days, total]:
        row["error_rate"] = _rate(row["status_4xx"] + row["status_5xx"], row["requests"])
    return {"days": days[:limit], "total": total}


def top_products(gold: GoldReader, start: date | None, end: date | None, limit: int) -> list[dict[str, Any]]:
    """Products by views over the window, with the time of the last view."""
    where, params = _window(start, end)
    return gold.query(
        "SELECT product_id, CAST(SUM(view_count) AS BIGINT) AS views, MAX(last_view_time) AS last_view_time"
        f" FROM product_views_daily{where} GROUP BY product_id ORDER BY views DESC, product_id LIMIT %(limit)s",
        params | {"limit": limit},
    )


def countries(gold: GoldReader, start: date | None, end: date | None, limit: int) -> list[dict[str, Any]]:
    """Countries (GeoIP ISO code, `(unknown)`) by product views over the window."""
    where, params = _window(start, end)
    return gold.query(
        "SELECT country, CAST(SUM(view_count) AS BIGINT) AS views"
        f" FROM country_views_daily{where} GROUP BY country ORDER BY views DESC, country LIMIT %(limit)s",
        params | {"limit": limit},
    )


def freshness(gold: GoldReader) -> dict[str, Any]:
    """How fresh the exported gold is: its latest report date, last export time, dates held."""
    (row,) = gold.query(
        "SELECT MAX(report_date) AS latest_report_date, MAX(exported_at) AS last_exported_at,"
        " COUNT(*) AS report_dates FROM lakehouse_export_state"
    )
    return row


def _rate(errors: int, requests: int) -> float:
    return errors / requests if requests else 0.0


@contextmanager
def reader(export: ExportConfig) -> Iterator[GoldReader]:
    """A GoldReader on the export target, closed on exit."""
    gold = GoldReader(database_from(export))
    try:
        yield gold
    finally:
        gold.close()
