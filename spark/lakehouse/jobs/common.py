"""What every job shares: common arguments, logging, the session, and run records."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config import Config, load_config
from lakehouse.io import delta

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("job", T.StringType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
        T.StructField("seconds", T.DoubleType()),
        T.StructField("counts", T.MapType(T.StringType(), T.LongType())),
    ]
)


@contextmanager
def timed(log: logging.Logger, name: str) -> Iterator[None]:
    """Log (debug level) how long a step took: `-v` shows where a job's time goes."""
    started = time.time()
    yield
    log.debug("  %s: %.2fs", name, time.time() - started)


def setup_logging(verbose: bool = False) -> None:
    """Job logs on stderr, one line each, timestamped."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_common_arguments(parser)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", help="warehouse dir or s3a:// url (default: from conf/lakehouse.yaml)")
    parser.add_argument("--profile", choices=("local", "services", "compose"), help="config profile (default: $LAKEHOUSE_PROFILE or local)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def config_from_args(args: argparse.Namespace) -> Config:
    """The config for a job's parsed arguments (--profile, --warehouse applied)."""
    config = load_config(profile=args.profile)
    return config.with_warehouse(args.warehouse) if args.warehouse else config


@dataclass
class JobRun:
    """Counts of one job run: logged as it goes, printed and recorded at the end."""

    job: str
    counts: dict[str, int] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.time)

    def add(self, **counts: int) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + int(value or 0)

    def summary(self) -> str:
        parts = ", ".join(f"{k}={v:,}" for k, v in self.counts.items())
        return f"{self.job}: {parts or 'nothing to do'} ({time.time() - self.started:.1f}s)"

    seconds: float | None = None

    def record(self, spark: SparkSession, config: Config) -> None:
        """Append this run to `<warehouse>/_meta/job_runs` and print its summary."""
        self.seconds = time.time() - self.started
        now = datetime.now(UTC).replace(tzinfo=None)
        start = datetime.fromtimestamp(self.started, UTC).replace(tzinfo=None)
        row = [(self.run_id, self.job, start, now, time.time() - self.started, dict(self.counts))]
        delta.append(spark.createDataFrame(row, RUNS_SCHEMA), config.table_path("_meta", "job_runs"))
        print(self.summary(), flush=True)


def get_session(config: Config, job: str) -> SparkSession:
    """The shared session factory, named after the job."""
    from lakehouse.session import get_spark

    return get_spark(config, app_name=f"lakehouse-{job}")
