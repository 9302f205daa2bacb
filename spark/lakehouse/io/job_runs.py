"""`<warehouse>/_meta/job_runs` read without Spark, for the API's /metrics.

Why delta-rs (the `deltalake` package) and not Spark or the raw files: a scrape must not
start a JVM (seconds, hundreds of MB), and reading the Parquet files directly would count
files that a later commit removed (OPTIMIZE rewrites them). delta-rs replays the log like
Spark does, read-only, and `update_incremental` reads only the commits made since the last
look, so a scrape costs a stat of the log unless a job has run since. Results are kept for
`ttl` seconds on top of that, so a scrape every few seconds stays cheap.

An s3a:// warehouse is read through the S3 settings of the config (endpoint, region,
keys from the environment); when the table cannot be read the pipeline figures are left
out of the scrape and the reason is logged (once per TTL), never raised into the API.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.config import Config

log = logging.getLogger("lakehouse.job_runs")


@dataclass(frozen=True)
class JobRunRow:
    """One run of one job, as `JobRun.record` wrote it."""

    job: str
    status: str
    finished_at: datetime | None
    seconds: float | None
    counts: dict[str, int]


def storage_options(config: Config) -> tuple[str, dict[str, str]]:
    """The job_runs table's URI for delta-rs and its object-store settings."""
    path = config.table_path("_meta", "job_runs")
    if not path.startswith(("s3a://", "s3://")):
        return path, {}
    options = {
        "AWS_ENDPOINT_URL": config.s3.endpoint,
        "AWS_REGION": config.s3.region,
        "AWS_ALLOW_HTTP": "true" if config.s3.endpoint.startswith("http://") else "false",
        # MinIO (and S3A's default) address buckets by path, not by virtual host.
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        # A storage outage must cost a scrape seconds, not the object store's minutes of retries.
        "connect_timeout": "3s",
        "timeout": "10s",
        "max_retries": "1",
    }
    if config.s3.access_key and config.s3.secret_key:
        options |= {"AWS_ACCESS_KEY_ID": config.s3.access_key, "AWS_SECRET_ACCESS_KEY": config.s3.secret_key}
    return "s3://" + path.split("://", 1)[1], options


class JobRunsReader:
    """The rows of `_meta/job_runs`, re-read at most every `ttl` seconds; None when unreadable."""

    def __init__(self, config: Config, ttl: float = 15.0) -> None:
        self.uri, self.options = storage_options(config)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._table = None
        self._version: int | None = None
        self._rows: list[JobRunRow] | None = None
        self._checked = float("-inf")

    def rows(self) -> list[JobRunRow] | None:
        """Every recorded run (None if the table cannot be read: no run yet, storage down)."""
        with self._lock:
            if time.monotonic() - self._checked >= self.ttl:
                self._checked = time.monotonic()
                self._refresh()
            return self._rows

    def _refresh(self) -> None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            if self._table is None:
                self._table = DeltaTable(self.uri, storage_options=self.options or None)
            else:
                self._table.update_incremental()
            version = self._table.version()
            if version != self._version:
                self._rows = _rows_of(self._table.to_pyarrow_table(columns=["job", "status", "finished_at", "seconds", "counts"]))
                self._version = version
        except TableNotFoundError:
            log.info("no job runs recorded yet at %s", self.uri)
            self._table, self._rows, self._version = None, None, None
        except Exception as error:  # noqa: BLE001 - metrics must never take the API down
            log.warning("pipeline metrics skipped: cannot read %s: %s", self.uri, _one_line(error))
            self._table, self._rows, self._version = None, None, None


def _rows_of(table) -> list[JobRunRow]:
    rows = []
    for r in table.to_pylist():
        finished = r["finished_at"]
        if finished is not None and finished.tzinfo is None:
            finished = finished.replace(tzinfo=UTC)  # the job records UTC wall time without a zone
        counts = r["counts"] or {}
        if isinstance(counts, list):  # Arrow maps come back as (key, value) pairs
            counts = dict(counts)
        rows.append(JobRunRow(r["job"], r["status"], finished, r["seconds"], {k: int(v or 0) for k, v in counts.items()}))
    return rows


def _one_line(error: BaseException) -> str:
    # delta-rs errors are indented trees with ANSI colours: one plain line for the log.
    text = re.sub(r"\x1b\[[0-9;]*m|↳", " ", str(error))
    return re.sub(r"\s+", " ", text).strip()[:400]
